const vm = require("vm");

function calculator(req, res) {
  // ruleid: picket.javascript.code-injection
  const result = eval(req.query.expr);
  // ruleid: picket.javascript.code-injection
  const fn = new Function("a", "b", "return " + req.body.formula);
  // ruleid: picket.javascript.code-injection
  setTimeout("refresh('" + req.query.id + "')", 100);
  // ruleid: picket.javascript.code-injection
  vm.runInNewContext(req.body.script, { console });
  // ok: picket.javascript.code-injection
  const two = eval("1 + 1");
  // ok: picket.javascript.code-injection
  setTimeout(() => res.end(), 100);
  // ok: picket.javascript.code-injection
  setTimeout(function () { res.end(); }, 100);
  // ok: picket.javascript.code-injection
  setInterval(poll, 1000);
  // ok: picket.javascript.code-injection
  const parsed = JSON.parse(req.body.data);
  res.json({ result, fn, two, parsed });
}
