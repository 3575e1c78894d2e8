"""`tviz watch`: rebuild the report as a run trains, serve it, and reload the open pages.

Three small parts, in the spirit of mkdocs' livereload, tied together by `session`:

- noticing (`tracker`): a watchfiles thread watches the database's folder for the file and
  its `-wal` (in WAL mode a commit only touches `X.db-wal`) and wakes the main loop;
  `PRAGMA data_version` then says whether anyone committed, and `Store.versions()` which runs
  changed. A slow timer checks the same things, so a missed event only costs latency.
  Several databases (one per node) are one site: each file is looked at so, the watcher
  covers all their folders, and a file that goes away is waited for while the others go on.
- re-rendering: only the pages of the runs that changed, plus the index, by the report builder
  (which writes each page atomically, so the server never sends half a page).
- serving (`server`, `inject`): a stdlib ThreadingHTTPServer for the output folder, loopback
  only unless asked, GET and HEAD only, no path out of the folder, no foreign Host header.
  HTML gets a small reload script (tviz/templates/reload.js) at serve time (the files stay
  exactly as `tviz build` writes them): it polls a tiny version endpoint, since server-sent
  events use up Chromium's six connections per host. On a change it fetches the new page and
  lets the page update itself in place (its charts keep their Vega views, zoom and the
  reader's place), reloading only when it cannot.
- comparing (`compare`): `GET /compare?run=ID&run=ID`, the index's link for the ticked runs,
  builds what `tviz compare` writes into `compare/` and redirects to it.
"""

from tviz.watch.inject import inject_reload, reload_script
from tviz.watch.server import ReportServer, WatchError, is_loopback
from tviz.watch.session import LiveSite, WatchOptions, watch
from tviz.watch.tracker import ChangeTracker

__all__ = [
    "ChangeTracker",
    "LiveSite",
    "ReportServer",
    "WatchError",
    "WatchOptions",
    "inject_reload",
    "is_loopback",
    "reload_script",
    "watch",
]
