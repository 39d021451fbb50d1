const libxmljs = require("libxmljs");

function parse(req) {
  // ruleid: picket.javascript.xxe
  const doc = libxmljs.parseXml(req.body, { noent: true, noblanks: true });
  // ruleid: picket.javascript.xxe
  const dtd = libxmljs.parseXmlString(req.body, { dtdload: true });
  // ok: picket.javascript.xxe
  const safe = libxmljs.parseXml(req.body, { noblanks: true });
  // ok: picket.javascript.xxe
  const off = libxmljs.parseXml(req.body, { noent: false });
  return [doc, dtd, safe, off];
}
