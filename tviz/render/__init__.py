"""Turning runs into self-contained HTML pages: `tviz build` and `tviz watch` use this.

from tviz.render import SiteBuilder, build_site
builder = SiteBuilder(db_path, out_dir, budget_bytes=25_000_000)  # keeps caches
report = builder.build(run_ids=None)  # None = all runs; always rewrites index.html
"""

from tviz.render.site import BuildReport, SiteBuilder, build_site, write_atomic

__all__ = ["BuildReport", "SiteBuilder", "build_site", "write_atomic"]
