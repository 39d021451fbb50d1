const jwt = require("jsonwebtoken");

function auth(req, res, next) {
  const token = req.headers.authorization.slice(7);
  // ruleid: picket.javascript.jwt-verification-disabled
  const claims = jwt.verify(token, process.env.JWT_KEY, { algorithms: ["HS256", "none"] });
  // ok: picket.javascript.jwt-verification-disabled
  const checked = jwt.verify(token, process.env.JWT_KEY, { algorithms: ["RS256"] });
  req.claims = [claims, checked];
  next();
}

function admin(req, res, next) {
  const decoded = jwt.decode(req.cookies.token);
  // ruleid: picket.javascript.jwt-verification-disabled
  if (decoded.isAdmin) {
    return next();
  }
  res.sendStatus(403);
}

function header(token) {
  // ok: picket.javascript.jwt-verification-disabled
  const { header } = jwt.decode(token, { complete: true });
  return header.kid;
}

// ruleid: picket.javascript.jwt-verification-disabled
const unsigned = jwt.sign({ sub: "1" }, "", { algorithm: "none" });

function attach(req, res, next) {
  const user = jwt.decode(req.headers["x-token"]);
  // ruleid: picket.javascript.jwt-verification-disabled
  req.user = user;
  next();
}
