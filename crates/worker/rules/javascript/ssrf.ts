import axios from "axios";
import { Request, Response } from "express";

export async function proxy(req: Request, res: Response): Promise<void> {
  const url = String(req.query.url);
  // ruleid: picket.javascript.ssrf
  const upstream = await axios.get(url);
  res.send(upstream.data);
}
