const express = require("express");

const app = express();

app.get("/login/callback", (req, res) => {
  // ruleid: picket.javascript.open-redirect
  res.redirect(req.query.next);
});

app.get("/go", (req, res) => {
  const to = req.query.to;
  // ruleid: picket.javascript.open-redirect
  res.redirect(302, to);
});

app.get("/profile", (req, res) => {
  // ok: picket.javascript.open-redirect
  res.redirect(`/users/${req.query.id}`);
  // ok: picket.javascript.open-redirect
  res.redirect("/home");
});
