import { Pool } from "pg";
import { Request, Response } from "express";

const pool = new Pool();

export async function orders(req: Request, res: Response): Promise<void> {
  const status: string = String(req.query.status);
  // ruleid: picket.javascript.sql-injection
  const result = await pool.query(`SELECT * FROM orders WHERE status = '${status}'`);
  // ok: picket.javascript.sql-injection
  const safe = await pool.query("SELECT * FROM orders WHERE status = $1", [status]);
  res.json({ rows: result.rows, safe: safe.rows });
}
