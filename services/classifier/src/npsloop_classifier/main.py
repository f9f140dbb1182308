"""The classifier app factory: `uvicorn --factory npsloop_classifier.main:create_app`."""

from __future__ import annotations

from fastapi import FastAPI

from npsloop_platform.app import ServiceParts, create_service_app
from npsloop_platform.bus import Bus

from .config import ClassifierSettings
from .consumer import build_consumer
from .handlers import Classifier
from .sentiment import model_named
from .taxonomy import load_taxonomy


def build(settings: ClassifierSettings, bus: Bus) -> ServiceParts:
    # A bad taxonomy file stops the start here, with the file and the fault named.
    sentiment = model_named(settings.sentiment_model)
    classifier = Classifier(sentiment, taxonomy=load_taxonomy(settings.taxonomy_file))
    consumer = build_consumer(settings, bus, classifier)
    return ServiceParts(components=[consumer], consumers=[consumer])


def create_app(settings: ClassifierSettings | None = None, bus: Bus | None = None) -> FastAPI:
    return create_service_app("classifier", settings or ClassifierSettings(), build, bus)
