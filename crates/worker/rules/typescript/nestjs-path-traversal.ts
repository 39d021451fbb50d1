import { Controller, Get, Param, Query, Res, StreamableFile } from "@nestjs/common";
import { Response } from "express";
import { createReadStream, promises as fsp } from "fs";
import * as path from "path";

const ROOT = "/srv/exports";

@Controller("exports")
export class ExportsController {
  @Get(":name")
  download(@Param("name") name: string): StreamableFile {
    // ruleid: picket.typescript.nestjs-path-traversal
    return new StreamableFile(createReadStream(path.join(ROOT, name)));
  }

  @Get()
  async preview(@Query("file") file: string, @Res() res: Response): Promise<void> {
    // ruleid: picket.typescript.nestjs-path-traversal
    const text = await fsp.readFile(`${ROOT}/${file}`, "utf8");
    // ruleid: picket.typescript.nestjs-path-traversal
    res.sendFile(path.resolve(ROOT, file));
    // ok: picket.typescript.nestjs-path-traversal
    res.sendFile(file, { root: ROOT });
    res.end(text);
  }

  @Get("safe/:name")
  safe(@Param("name") name: string): StreamableFile {
    // ok: picket.typescript.nestjs-path-traversal
    return new StreamableFile(createReadStream(path.join(ROOT, path.basename(name))));
  }
}
