export function run(expr: string): unknown {
  // ruleid: picket.javascript.code-injection
  return eval(`(${expr})`);
}

export function schedule(task: () => void): void {
  // ok: picket.javascript.code-injection
  setTimeout(task, 10);
}
