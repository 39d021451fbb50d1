const crypto = require("crypto");
const { createHash } = require("node:crypto");

function digest(password, body) {
  // ruleid: picket.javascript.weak-hash
  const a = crypto.createHash("md5").update(password).digest("hex");
  // ruleid: picket.javascript.weak-hash
  const b = createHash("sha1").update(body).digest("hex");
  // ruleid: picket.javascript.weak-hash
  const c = crypto.createHmac("md5", "k").update(body).digest("hex");
  // ok: picket.javascript.weak-hash
  const d = crypto.createHash("sha256").update(body).digest("hex");
  // ok: picket.javascript.weak-hash
  const totp = crypto.createHmac("sha1", "k").update(body).digest();
  return [a, b, c, d, totp];
}
