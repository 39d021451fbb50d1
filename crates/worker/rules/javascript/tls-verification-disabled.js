const https = require("https");
const axios = require("axios");
const tls = require("tls");

// ruleid: picket.javascript.tls-verification-disabled
const agent = new https.Agent({ keepAlive: true, rejectUnauthorized: false });
// ruleid: picket.javascript.tls-verification-disabled
process.env.NODE_TLS_REJECT_UNAUTHORIZED = "0";

async function call(url) {
  // ruleid: picket.javascript.tls-verification-disabled
  const socket = tls.connect(443, "db.internal", { rejectUnauthorized: false });
  // ruleid: picket.javascript.tls-verification-disabled
  const legacy = request({ url, strictSSL: false });
  // ok: picket.javascript.tls-verification-disabled
  const safeAgent = new https.Agent({ ca: process.env.PRIVATE_CA, rejectUnauthorized: true });
  // ok: picket.javascript.tls-verification-disabled
  return axios.get(url, { httpsAgent: safeAgent, socket, legacy });
}

// ok: picket.javascript.tls-verification-disabled
process.env.NODE_TLS_REJECT_UNAUTHORIZED = "1";
