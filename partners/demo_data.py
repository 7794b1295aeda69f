"""Demo data: an invented coastal city (海川市西岸新区) modelled on Qingdao West Coast's
政银+ practice. Names, addresses and codes are made up but follow the real formats.
Dates are relative to the day of seeding so the demo never goes stale."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CENTER = "海川市西岸新区行政审批服务局（政务服务中心）"
REGION = "370298"  # invented county-level code inside 3702xx

# Implementing agencies: key → (name, 9-char organisation code part of the USCC).
AGENCIES = {
    "rsj": ("海川市西岸新区社会保险事业中心", "004189021"),
    "ybj": ("海川市西岸新区医疗保障局", "MB1538472"),
    "gjj": ("海川市住房公积金管理中心西岸新区管理处", "004189056"),
    "spj": ("海川市西岸新区行政审批服务局", "MB1540126"),
    "bdc": ("海川市自然资源局西岸新区不动产登记中心", "004189145"),
    "mzj": ("海川市西岸新区民政局", "004189170"),
}

# code, name, kind, contact
PARTNERS = [
    ("ICBC-HC", "中国工商银行股份有限公司海川分行", "bank", "个人金融业务部 0532-8619 0001"),
    ("CCB-HC", "中国建设银行股份有限公司海川分行", "bank", "普惠金融事业部 0532-8619 0002"),
    ("HCRCB", "海川农村商业银行股份有限公司", "bank", "零售银行部 0532-8619 0003"),
    ("PSBC-HC", "中国邮政储蓄银行股份有限公司海川分行", "bank", "三农金融事业部 0532-8619 0004"),
    ("POST-HC", "中国邮政集团有限公司海川市分公司", "post", "渠道平台部 0532-8619 0005"),
    (
        "IFC-HC",
        "海川国际金融中心（海川城投物业服务有限公司）",
        "building",
        "物业服务中心 0532-8619 0006",
    ),
    ("LYW-ST", "海川市西岸新区琅琊湾街道办事处", "block", "便民服务中心 0532-8619 0007"),
    ("DPARK", "西岸数字经济产业园管理服务中心", "park", "企业服务部 0532-8619 0008"),
]

# Counter phones printed on receipts (made up, in the 0532 area's format).
OUTLET_PHONES = {
    "HC-ICBC-01": "0532-8619 2101", "HC-ICBC-02": "0532-8619 2102", "HC-CCB-01": "0532-8619 2201",
    "HC-RCB-01": "0532-8619 2301", "HC-PSBC-01": "0532-8619 2401", "HC-POST-01": "0532-8619 2501",
    "HC-IFC-01": "0532-8619 2601", "HC-LYW-01": "0532-8619 2701", "HC-DPARK-01": "0532-8619 2801",
}
HOURS_BANK = "周一至周五 9:00–17:00；周六 9:00–12:00"
# key, code, partner code, name, address, kind, lat, lon, hours, 24h self-service
OUTLETS = [
    (
        "A",
        "HC-ICBC-01",
        "ICBC-HC",
        "工商银行海川长江中路支行",
        "海川市西岸新区长江中路 218 号",
        "bank",
        35.9606,
        120.1912,
        HOURS_BANK,
        False,
    ),
    (
        "F",
        "HC-ICBC-02",
        "ICBC-HC",
        "工商银行海川开发区支行（24 小时自助服务区）",
        "海川市西岸新区井冈山路 657 号",
        "bank",
        35.9473,
        120.1790,
        "自助服务区 24 小时开放；柜台周一至周五 9:00–17:00",
        True,
    ),
    (
        "B",
        "HC-CCB-01",
        "CCB-HC",
        "建设银行海川香江路支行",
        "海川市西岸新区香江路 106 号",
        "bank",
        35.9688,
        120.2010,
        HOURS_BANK,
        False,
    ),
    (
        "C",
        "HC-RCB-01",
        "HCRCB",
        "农商银行海川灵山卫支行",
        "海川市西岸新区灵山卫街道海滨路 29 号",
        "bank",
        35.9290,
        120.1378,
        "周一至周日 8:30–17:00",
        False,
    ),
    (
        "D",
        "HC-PSBC-01",
        "PSBC-HC",
        "邮储银行海川王台支行",
        "海川市西岸新区王台镇王台大街 88 号",
        "bank",
        35.9945,
        119.9631,
        "周一至周五 8:30–17:00",
        False,
    ),
    (
        "E",
        "HC-POST-01",
        "POST-HC",
        "海川邮政黄岛路营业所",
        "海川市西岸新区黄岛路 45 号",
        "post",
        35.9752,
        120.2215,
        "周一至周日 8:00–17:30",
        False,
    ),
    (
        "G",
        "HC-IFC-01",
        "IFC-HC",
        "海川国际金融中心政务服务驿站",
        "海川市西岸新区滨海大道 1888 号 B 座 1 层",
        "building",
        35.9521,
        120.2106,
        "周一至周五 9:00–12:00，13:30–17:30",
        False,
    ),
    (
        "H",
        "HC-LYW-01",
        "LYW-ST",
        "琅琊湾街道海韵社区便民服务站",
        "海川市西岸新区琅琊湾街道海韵路 12 号",
        "block",
        35.8901,
        120.0903,
        "周一至周六 8:30–11:30，14:00–17:00（可预约上门）",
        False,
    ),
    (
        "I",
        "HC-DPARK-01",
        "DPARK",
        "西岸数字经济产业园企业服务驿站",
        "海川市西岸新区江山南路 520 号",
        "park",
        35.9412,
        120.1606,
        "周一至周五 9:00–17:00",
        False,
    ),
]

ALL = ["咨询", "帮办", "收件受理", "代办", "即办", "视频办"]


def _load_matters() -> dict[str, tuple[str, str, dict[str, Any]]]:
    """The demo catalog (19 matters in six domains) lives in ``data/demo_catalog.json``:
    key → agency, basic code and the versioned fields ``create_matter`` validates."""
    raw = json.loads((Path(__file__).parent / "data" / "demo_catalog.json").read_text("utf-8"))
    return {
        key: (entry.pop("agency"), entry.pop("basic_code"), entry) for key, entry in raw.items()
    }


# key: (agency, basic code, fields)
MATTERS: dict[str, tuple[str, str, dict[str, Any]]] = _load_matters()

# One catalog edit after seeding, to show versioning: the card's committed days shortened.
MATTER_EDITS = {"ss_card": {"committed_days": 7}}

# key, partner code, outlets, matters, scopes, kind ("ok" / "expired" / "revoked")
GRANTS = [
    (
        "icbc-main",
        "ICBC-HC",
        ["A"],
        [
            "ss_resident_pension",
            "ss_card",
            "ss_flexible",
            "ss_transfer",
            "mi_transfer",
            "mi_chronic",
            "mi_resident",
            "hf_retire",
            "hf_certificate",
            "re_query",
            "re_mortgage",
        ],
        ["咨询", "帮办", "收件受理", "即办", "视频办"],
        "ok",
    ),
    ("icbc-selfservice", "ICBC-HC", ["F"], ["hf_certificate", "re_query"], ["咨询", "即办"], "ok"),
    (
        "icbc-business-expired",
        "ICBC-HC",
        ["A"],
        ["biz_individual"],
        ["咨询", "帮办", "收件受理"],
        "expired",
    ),
    (
        "ccb-main",
        "CCB-HC",
        ["B"],
        [
            "ss_card",
            "hf_retire",
            "hf_certificate",
            "hf_employer",
            "biz_individual",
            "biz_food",
            "biz_change",
            "biz_deregister",
        ],
        ["咨询", "帮办", "收件受理", "代办", "视频办"],
        "ok",
    ),
    (
        "ccb-mortgage-revoked",
        "CCB-HC",
        ["B"],
        ["re_mortgage"],
        ["咨询", "帮办", "收件受理", "代办"],
        "revoked",
    ),
    (
        "rcb-main",
        "HCRCB",
        ["C"],
        [
            "ss_resident_pension",
            "ss_card",
            "ss_flexible",
            "mi_chronic",
            "mi_resident",
            "ca_elderly",
            "ca_dibao",
            "ca_disability",
        ],
        ["咨询", "帮办", "收件受理", "视频办"],
        "ok",
    ),
    (
        "psbc-main",
        "PSBC-HC",
        ["D"],
        ["ss_resident_pension", "ss_card", "mi_resident", "ca_elderly", "ca_disability"],
        ["咨询", "帮办", "收件受理", "代办", "视频办"],
        "ok",
    ),
    (
        "post-main",
        "POST-HC",
        ["E"],
        ["ss_card", "hf_certificate", "re_query"],
        ["咨询", "收件受理", "即办"],
        "ok",
    ),
    (
        "ifc-main",
        "IFC-HC",
        ["G"],
        ["biz_individual", "biz_food", "biz_change", "biz_deregister", "hf_employer"],
        ["咨询", "帮办", "收件受理", "视频办"],
        "ok",
    ),
    (
        "block-main",
        "LYW-ST",
        ["H"],
        [
            "ss_resident_pension",
            "mi_resident",
            "mi_chronic",
            "ca_elderly",
            "ca_dibao",
            "ca_disability",
        ],
        ["咨询", "帮办", "收件受理", "代办", "视频办"],
        "ok",
    ),
    (
        "park-main",
        "DPARK",
        ["I"],
        ["biz_individual", "biz_change", "biz_deregister", "hf_employer"],
        ["咨询", "帮办", "收件受理"],
        "ok",
    ),
]
REVOKE_REASON = "不动产登记系统接口切换，抵押登记暂停由合作网点受理，请至不动产登记中心窗口办理"

# username, display name, roles, outlet key, domain, expert level
STAFF = [
    ("admin", "周海峰", ["admin"], None, None, None),
    ("secadmin", "孙立新", ["security_admin"], None, None, None),
    ("auditor", "郑雅琴", ["auditor"], None, None, None),
    ("teller1", "张晓燕", ["teller"], "A", None, None),
    ("lead1", "刘建国", ["outlet_lead"], "A", None, None),
    ("lead2", "高志强", ["outlet_lead"], "F", None, None),
    ("teller2", "王芳", ["teller"], "B", None, None),
    ("teller3", "陈静", ["teller"], "C", None, None),
    ("teller4", "孙丽", ["teller"], "E", None, None),
    ("agent1", "李秀兰", ["block_agent"], "H", None, None),
    ("lead3", "韩淑珍", ["outlet_lead"], "H", None, None),  # the street point's lead
    ("expert1", "赵磊", ["expert"], None, "商事登记", "town"),
    ("expert2", "钱文博", ["expert"], None, None, "city"),
    ("expert3", "孙明", ["expert"], None, "社保", "district"),
    ("reviewer1", "吴敏", ["reviewer"], None, "社保", None),
    ("reviewer2", "冯涛", ["reviewer"], None, "商事登记", None),
    ("reviewer3", "何静怡", ["reviewer"], None, None, None),
    # a second security admin, so the two-person rule (双人复核) works on a fresh demo
    ("secadmin2", "林卫东", ["security_admin"], None, None, None),
]

# 合作方管理员 (partner managers): username, display name, partner code. partner1 is the
# ICBC branch-network office: it sees 工商银行长江中路支行 and 开发区支行, no other outlet.
PARTNER_STAFF = [("partner1", "马文涛", "ICBC-HC")]

# AB角: teller3 covers teller2's post at 建设银行香江路支行 while she is on leave.
BACKUPS = [("teller2", "teller3", -2, 5, "王芳休年假期间由陈静顶岗（AB 角）")]
