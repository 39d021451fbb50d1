import * as libxmljs from "libxmljs";

export function parse(xml: string) {
  // ruleid: picket.javascript.xxe
  return libxmljs.parseXml(xml, { noent: true });
}
