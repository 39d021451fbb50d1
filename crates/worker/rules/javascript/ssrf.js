const express = require("express");
const axios = require("axios");
const http = require("http");

const app = express();

app.get("/preview", async (req, res) => {
  const target = req.query.url;
  // ruleid: picket.javascript.ssrf
  const page = await fetch(target);
  // ruleid: picket.javascript.ssrf
  const meta = await axios.get(req.body.webhook, { timeout: 2000 });
  // ruleid: picket.javascript.ssrf
  http.get(`http://${req.query.host}/status`, (r) => r.resume());
  // ok: picket.javascript.ssrf
  const user = await axios.get(`https://api.example.com/users/${req.params.id}`);
  // ok: picket.javascript.ssrf
  const search = await fetch("https://api.example.com/search?q=" + encodeURIComponent(req.query.q));
  // ok: picket.javascript.ssrf
  const fixed = await axios.get("https://status.example.com/health", { params: { id: req.query.id } });
  res.json({ page: await page.text(), meta: meta.data, user: user.data, search, fixed });
});
