from npsloop_reporting.models import Base
from npsloop_platform.migrations import run_env

run_env(Base.metadata)
