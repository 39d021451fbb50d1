import xml.sax
from xml.sax.handler import feature_external_ges

import defusedxml.ElementTree as SafeET
from lxml import etree


def parse(data, handler):
    # ruleid: picket.python.xxe
    parser = etree.XMLParser(resolve_entities=True)
    # ruleid: picket.python.xxe
    loose = etree.XMLParser(load_dtd=True, no_network=False)
    sax = xml.sax.make_parser()
    # ruleid: picket.python.xxe
    sax.setFeature(feature_external_ges, True)
    # ok: picket.python.xxe
    sax.setFeature(feature_external_ges, False)
    # ok: picket.python.xxe
    strict = etree.XMLParser(resolve_entities=False, no_network=True)
    # ok: picket.python.xxe
    tree = SafeET.fromstring(data)
    return etree.fromstring(data, parser), loose, strict, tree
