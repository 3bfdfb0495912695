// The admin panel (/admin). Being written: see the admin panel issue.
"use strict";
TH.notice(document.getElementById("admin"), "The admin panel is loading…", "ok");
