import { DataSource, Repository } from "typeorm";
import { User } from "./user.entity";

export class UserService {
  constructor(private readonly repo: Repository<User>, private readonly ds: DataSource) {}

  search(name: string, sort: string, orgId: string) {
    // ruleid: picket.typescript.typeorm-query-builder-injection
    const a = this.repo.createQueryBuilder("user").where(`user.name = '${name}'`).getMany();
    const qb = this.ds.createQueryBuilder(User, "user");
    // ruleid: picket.typescript.typeorm-query-builder-injection
    qb.where("user.active = true").andWhere("user.orgId = " + orgId);
    // ruleid: picket.typescript.typeorm-query-builder-injection
    qb.orderBy(`user.${sort}`);
    // ruleid: picket.typescript.typeorm-query-builder-injection
    qb.leftJoinAndSelect("user.teams", "team", `team.orgId = ${orgId}`);
    // ok: picket.typescript.typeorm-query-builder-injection
    const b = this.repo.createQueryBuilder("user").where("user.name = :name", { name }).getMany();
    // ok: picket.typescript.typeorm-query-builder-injection
    qb.andWhere("user.orgId = :orgId", { orgId });
    return [a, b, qb.getMany()];
  }

  filter(items: string[], name: string) {
    // ok: picket.typescript.typeorm-query-builder-injection
    return items.filter((i) => i === name).map((i) => `${i}`);
  }
}
