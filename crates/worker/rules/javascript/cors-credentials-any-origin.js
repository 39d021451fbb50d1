const express = require("express");
const cors = require("cors");

const app = express();
// ruleid: picket.javascript.cors-credentials-any-origin
app.use(cors({ credentials: true, origin: (origin, callback) => callback(null, true) }));
// ruleid: picket.javascript.cors-credentials-any-origin
app.use("/api", cors({ origin: true, credentials: true, maxAge: 600 }));
// ok: picket.javascript.cors-credentials-any-origin
app.use(cors({ origin: ["https://app.example.com"], credentials: true }));
// ok: picket.javascript.cors-credentials-any-origin
app.use(cors());
