const express = require("express");
const fs = require("fs");
const path = require("path");

const app = express();
const UPLOADS = "/srv/uploads";

app.get("/files/:name", (req, res) => {
  // ruleid: picket.javascript.path-traversal
  res.sendFile(path.join(UPLOADS, req.params.name));
});

app.get("/raw", (req, res) => {
  const file = UPLOADS + "/" + req.query.file;
  // ruleid: picket.javascript.path-traversal
  fs.readFile(file, "utf8", (err, data) => res.send(data));
});

app.delete("/files", async (req, res) => {
  // ruleid: picket.javascript.path-traversal
  await fs.promises.unlink(`${UPLOADS}/${req.body.name}`);
  res.sendStatus(204);
});

app.get("/safe/:name", (req, res) => {
  // ok: picket.javascript.path-traversal
  res.sendFile(req.params.name, { root: UPLOADS });
  // ok: picket.javascript.path-traversal
  fs.createReadStream(path.join(UPLOADS, path.basename(req.params.name))).pipe(res);
  // ok: picket.javascript.path-traversal
  res.download(path.join(UPLOADS, "report.pdf"));
});
