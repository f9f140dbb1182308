"""npsloop reporting: the read model of NPS figures, KPIs, weekly digests and the dashboard."""
