import ast
import builtins


def calc(expr, body, env):
    # ruleid: picket.python.code-injection
    result = eval(expr)
    # ruleid: picket.python.code-injection
    exec("def handler():\n" + body, env)
    # ruleid: picket.python.code-injection
    builtins.eval(f"{expr} + 1")
    # ruleid: picket.python.code-injection
    exec(compile(body, "<string>", "exec"))
    # ok: picket.python.code-injection
    value = ast.literal_eval(expr)
    # ok: picket.python.code-injection
    eval("1 + 2")
    # ok: picket.python.code-injection
    exec(compile("x = 1", "<string>", "exec"), env)
    return result, value


class Model:
    def eval(self):
        return self


def infer(model):
    # ok: picket.python.code-injection
    model.eval()
