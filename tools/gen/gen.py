#!/usr/bin/env python3
"""gen.py -- a realistic, seeded CRM company written straight into a server directory.

    tools/gen/gen.py --dir D [--scale 1.0] [--seed 7] [--regions 8] [--reps 50]
                     [--docs FILE.ndjson] [--admin build/bin/fieldsync-admin]

A company of R regions (departments under head office "hq") and its reps
(role rep, one region each; plus an office user "import"), and, at scale 1:
100,000 customers, 300,000 contacts, 50,000 opportunities, 200,000 visits,
150,000 orders with 1,000,000 order lines, and the catalogue (2,000
products, a standard and a regional price list per region).  --scale
multiplies every record count (the catalogue never drops below 50
products).

D is created with `fieldsync-admin --dir D init`, then departments and
users with `dept add` / `user add`; the records go straight into
server.db in one transaction, exactly as fieldsyncd would have stored
them had the company's legacy CRM been pushed by one office device
("import", retired when the migration ended):

  * every record row in its table (money in minor units, quantities in
    thousandths, rates in basis points, coordinates in micro-degrees);
  * one fs_log row per record, op 'I', val = json_object() of its fields
    in column order -- the SQL the capture trigger that produced the pushed
    value runs (sync/capture.c), so the bytes are the server's own --,
    scope = the customer's region for everything hanging off a customer,
    '' for the catalogue (fs_entity.scope_via); the log is in creation
    order, parents before children;
  * one fs_clock row (tbl, rid, col '', hlc, device, seq) per record;
  * hlc = creation time in ms << 16, strictly increasing along the log;
    fs_meta 'hlc' and the device's pushed_hlc are the greatest one.

Ids are UUIDv7 (the creation time, then seeded random bits).  The same
seed and scale give byte-identical records, log and clocks (and
--docs file); keys, certificates and the created_at of departments and
users are the admin tool's and differ per run.

--docs FILE also writes every record as one JSON document per line for a
CouchDB/PouchDB peer: the same fields, plus _id (the record id), "type"
(the table) and "scope" (its department, '' for the catalogue), in log
order.  Stdlib only.
"""
import argparse
import datetime
import json
import os
import random
import sqlite3
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# code, name, cities: (name, area code, lat, lon, districts)
REGIONS = [
    ("east", "East China", [("Shanghai", "21", 31.23, 121.47, ["Pudong", "Minhang", "Jiading", "Baoshan"]),
                            ("Hangzhou", "571", 30.27, 120.16, ["Xihu", "Gongshu", "Binjiang", "Xiaoshan"]),
                            ("Nanjing", "25", 32.06, 118.80, ["Gulou", "Jiangning", "Qixia"]),
                            ("Suzhou", "512", 31.30, 120.59, ["Gusu", "Wuzhong", "Kunshan"]),
                            ("Ningbo", "574", 29.87, 121.55, ["Yinzhou", "Beilun", "Zhenhai"])]),
    ("south", "South China", [("Guangzhou", "20", 23.13, 113.26, ["Tianhe", "Baiyun", "Panyu", "Huangpu"]),
                              ("Shenzhen", "755", 22.54, 114.06, ["Nanshan", "Bao'an", "Longgang", "Futian"]),
                              ("Dongguan", "769", 23.02, 113.75, ["Chang'an", "Humen", "Songshan Lake"]),
                              ("Foshan", "757", 23.02, 113.12, ["Shunde", "Nanhai", "Chancheng"]),
                              ("Xiamen", "592", 24.48, 118.09, ["Siming", "Huli", "Jimei"])]),
    ("north", "North China", [("Beijing", "10", 39.90, 116.40, ["Chaoyang", "Haidian", "Fengtai", "Daxing"]),
                              ("Tianjin", "22", 39.08, 117.20, ["Binhai", "Hexi", "Nankai"]),
                              ("Shijiazhuang", "311", 38.04, 114.51, ["Chang'an", "Qiaoxi", "Yuhua"]),
                              ("Taiyuan", "351", 37.87, 112.55, ["Xiaodian", "Yingze", "Jiancaoping"])]),
    ("central", "Central China", [("Wuhan", "27", 30.59, 114.31, ["Jiang'an", "Hongshan", "Hanyang", "Wuchang"]),
                                  ("Changsha", "731", 28.23, 112.94, ["Yuelu", "Furong", "Tianxin"]),
                                  ("Zhengzhou", "371", 34.75, 113.63, ["Jinshui", "Zhongyuan", "Erqi"]),
                                  ("Nanchang", "791", 28.68, 115.86, ["Donghu", "Xihu", "Qingshanhu"])]),
    ("southwest", "Southwest China", [("Chengdu", "28", 30.57, 104.07, ["Wuhou", "Jinjiang", "Chenghua", "Shuangliu"]),
                                      ("Chongqing", "23", 29.56, 106.55, ["Yuzhong", "Jiangbei", "Nan'an"]),
                                      ("Kunming", "871", 25.04, 102.71, ["Wuhua", "Panlong", "Guandu"]),
                                      ("Guiyang", "851", 26.65, 106.63, ["Nanming", "Yunyan", "Huaxi"])]),
    ("northeast", "Northeast China", [("Shenyang", "24", 41.81, 123.43, ["Heping", "Shenhe", "Tiexi"]),
                                      ("Dalian", "411", 38.91, 121.61, ["Zhongshan", "Shahekou", "Ganjingzi"]),
                                      ("Harbin", "451", 45.80, 126.53, ["Daoli", "Nangang", "Xiangfang"]),
                                      ("Changchun", "431", 43.82, 125.32, ["Chaoyang", "Nanguan", "Kuancheng"])]),
    ("northwest", "Northwest China", [("Xi'an", "29", 34.34, 108.94, ["Yanta", "Beilin", "Weiyang"]),
                                      ("Lanzhou", "931", 36.06, 103.83, ["Chengguan", "Qilihe", "Anning"]),
                                      ("Yinchuan", "951", 38.49, 106.23, ["Xingqing", "Jinfeng", "Xixia"]),
                                      ("Urumqi", "991", 43.83, 87.62, ["Tianshan", "Shayibake", "Xinshi"])]),
    ("shandong", "Shandong", [("Jinan", "531", 36.65, 117.12, ["Lixia", "Shizhong", "Licheng"]),
                              ("Qingdao", "532", 36.07, 120.38, ["Shinan", "Laoshan", "Huangdao"]),
                              ("Yantai", "535", 37.46, 121.45, ["Zhifu", "Laishan", "Fushan"]),
                              ("Weifang", "536", 36.71, 119.16, ["Kuiwen", "Weicheng", "Fangzi"])]),
]
SURNAMES = ("Wang Li Zhang Liu Chen Yang Huang Zhao Wu Zhou Xu Sun Ma Zhu Hu Guo He Lin Gao Luo "
            "Zheng Liang Xie Song Tang Han Feng Deng Cao Peng Zeng Xiao Tian Dong Pan Yuan Cai "
            "Jiang Yu Du Ye Cheng Wei Su Lu Ding Ren Shen Yao").split()
GIVEN = ("Wei Fang Na Min Jing Li Qiang Lei Jun Yang Yong Yan Jie Tao Ming Chao Xiuying Xia Ping "
         "Gang Hui Hong Lin Ling Bo Hao Yu Xin Dan Peng Juan Kai Bin Ning Rui Lan Qing Tingting "
         "Haiyan Jianguo Guilan Zhiqiang Xiaoming Yuqi Zihan Yutong Haoran Shuang Fei").split()
BRANDS = ("Hengda Huaxin Jinlong Xinghua Tianrun Dongfang Hongyuan Zhongda Ruifeng Shengtai Jiahe "
          "Hengtong Longsheng Boyuan Xinyu Kaida Minghui Fuda Yongxin Huatai Sanhe Baoli Dingsheng "
          "Haitian Jinyuan Weiye Xinda Yuanhang Zhongxin Guotai").split()
INDUSTRIES = [("Valves", "valve manufacturing"), ("Pumps", "pump manufacturing"),
              ("Machinery", "machinery"), ("Hardware", "hardware wholesale"),
              ("Electric", "electrical equipment"), ("Plastics", "plastics"),
              ("Chemical", "chemicals"), ("Textile", "textiles"), ("Auto Parts", "automotive"),
              ("Building Materials", "construction"), ("Food", "food processing"),
              ("Electronics", "electronics"), ("Instruments", "instrumentation"),
              ("Packaging", "packaging"), ("Steel", "metals"), ("Water", "water utilities")]
SUFFIXES = ["Co., Ltd.", "Trading Co., Ltd.", "Industrial Co., Ltd.", "Group Co., Ltd.",
            "Equipment Co., Ltd.", "Technology Co., Ltd."]
ROADS = ("Jiefang Renmin Zhongshan Jianshe Heping Xinhua Changjiang Huanghe Wenhua Gongye "
         "Keji Chaoyang Yingbin Binhe Huancheng Dongfeng Xingfu Jinqiao").split()
CTYPES = ["distributor", "manufacturer", "end user", "contractor", "design institute", "retailer"]
RATINGS = ["AAA", "AA", "A", "B", "C"]
TITLES = ["Purchasing Manager", "General Manager", "Engineer", "Chief Engineer", "Buyer",
          "Finance Manager", "Plant Manager", "Project Manager", "Technician", "Sales Director"]
CDEPTS = ["Purchasing", "Engineering", "Finance", "Management", "Production", "Projects"]
HOBBIES = ["tea", "golf", "fishing", "badminton", "calligraphy", "hiking", "table tennis",
           "photography", "basketball", "travel", "chess", "karaoke"]
PURPOSES = ["Quarterly review", "Product demo", "Price negotiation", "Delivery follow-up",
            "Payment collection", "New project survey", "Complaint handling", "Introduce new model",
            "Contract signing", "Technical support"]
OUTCOMES = ["Customer interested, asked for a quote", "Agreed on delivery date",
            "Needs approval from head office", "Competitor offered lower price",
            "Order expected next month", "Payment promised by end of month", "No decision yet",
            "Sample requested", "Issue resolved on site", ""]
NEXT = ["Send quote", "Call back", "Arrange factory visit", "Send samples", "Follow up payment",
        "Prepare contract", "Technical drawing review", "Invite to trade fair"]
STAGES = [("lead", 30), ("qualified", 20), ("proposal", 15), ("negotiation", 10), ("won", 15), ("lost", 10)]
PROB = {"lead": 10, "qualified": 25, "proposal": 50, "negotiation": 70, "won": 100, "lost": 0}
OSTAT = [("draft", 5), ("submitted", 10), ("confirmed", 15), ("shipped", 20), ("invoiced", 47), ("cancelled", 3)]
VSTAT = [("completed", 80), ("planned", 12), ("abandoned", 5), ("in_progress", 3)]
FAMILIES = [("BV", "Ball valve", "pcs", 8600), ("GV", "Gate valve", "pcs", 21000),
            ("CV", "Check valve", "pcs", 9800), ("BF", "Butterfly valve", "pcs", 15500),
            ("CP", "Centrifugal pump", "set", 320000), ("SP", "Submersible pump", "set", 185000),
            ("FL", "Flange", "pcs", 4200), ("PG", "Pressure gauge", "pcs", 6800),
            ("PF", "Pipe fitting", "pcs", 1500), ("SK", "Seal kit", "set", 3200),
            ("ST", "Strainer", "pcs", 12800), ("AC", "Actuator", "set", 96000)]
SIZES = ["DN15", "DN20", "DN25", "DN32", "DN40", "DN50", "DN65", "DN80", "DN100", "DN150", "DN200", "DN300"]
MATERIALS = ["cast iron", "ductile iron", "carbon steel", "stainless 304", "stainless 316", "brass"]

START = int(datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc).timestamp() * 1000)
END = int(datetime.datetime(2026, 10, 31, tzinfo=datetime.timezone.utc).timestamp() * 1000)
DAY = 86400000


def weighted(rng, pairs):
    vals = [v for v, _ in pairs]
    cum, s = [], 0
    for _, w in pairs:
        s += w
        cum.append(s)
    return lambda: rng.choices(vals, cum_weights=cum)[0]


class Gen:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.used = set()
        self.recs = []            # (ms, ord, tbl, id, scope), log order is by (ms)

    def ms_after(self, t0, span):
        """A unique creation time in ms after t0 (within span ms, before END)."""
        r = self.rng
        hi = min(END, t0 + span)
        t = t0 + 1 + int(r.random() * max(1, hi - t0 - 1))
        while t in self.used:
            t += 1
        self.used.add(t)
        return t

    def uuid7(self, ms):
        b = self.rng.getrandbits(74)
        return "%08x-%04x-7%03x-%04x-%012x" % (
            ms >> 16, ms & 0xFFFF, b >> 62, 0x8000 | ((b >> 48) & 0x3FFF), b & 0xFFFFFFFFFFFF)


def ts(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def day(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%d")


def admin(a, *args):
    subprocess.run([a.admin, "--dir", a.dir] + list(args), check=True, stdout=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", required=True, help="server directory to create (must not exist)")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--regions", type=int, default=8)
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--docs", help="also write the records as JSON documents (one per line) here")
    ap.add_argument("--admin", default=os.path.join(ROOT, "build", "bin", "fieldsync-admin"))
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args()
    t_start = time.time()
    say = (lambda *x: None) if a.quiet else (lambda *x: print("gen:", *x, file=sys.stderr))
    if os.path.exists(a.dir):
        sys.exit("gen: %s exists" % a.dir)
    os.makedirs(os.path.dirname(os.path.abspath(a.dir)), exist_ok=True)
    S = a.scale
    n_cust = max(10, int(100000 * S))
    n_contact = max(10, int(300000 * S))
    n_opp = max(5, int(50000 * S))
    n_visit = max(10, int(200000 * S))
    n_order = max(10, int(150000 * S))
    n_line = max(n_order, int(1000000 * S))
    n_prod = max(50, int(2000 * S))
    R = max(1, a.regions)

    # -- the organisation, through the admin tool
    admin(a, "init", "--org", "Huadong Valve & Pump Group", "--host", "crm.huadong-valve.cn")
    admin(a, "dept", "add", "hq", "--name", "Head office")
    regions = []
    for i in range(R):
        code, name, cities = REGIONS[i % len(REGIONS)]
        if i >= len(REGIONS):
            code, name = "%s%d" % (code, i // len(REGIONS) + 1), "%s %d" % (name, i // len(REGIONS) + 1)
        admin(a, "dept", "add", code, "--name", name, "--parent", "hq")
        regions.append((code, cities))
    g = Gen(a.seed)
    rng = g.rng
    reps_of = {code: [] for code, _ in regions}
    reps = []
    names_taken = set()
    for i in range(a.reps):
        code = regions[i % R][0]
        while True:
            nm = ("%s.%s" % (rng.choice(GIVEN), rng.choice(SURNAMES))).lower()
            if nm not in names_taken:
                break
        names_taken.add(nm)
        admin(a, "user", "add", nm, "--role", "rep", "--region", code)
        reps_of[code].append(nm)
        reps.append((nm, code))
    admin(a, "user", "add", "import", "--role", "office", "--region", "*")
    for code, _ in regions:
        if not reps_of[code]:
            reps_of[code].append("import")
    say("organisation: %d regions, %d reps (%.1f s)" % (R, len(reps), time.time() - t_start))

    db = sqlite3.connect(os.path.join(a.dir, "server.db"), isolation_level=None)
    db.execute("PRAGMA cache_size=-1000000")
    db.execute("PRAGMA temp_store=MEMORY")
    db.execute("BEGIN IMMEDIATE")
    device = g.uuid7(END + DAY)
    recs = g.recs
    rand = rng.random
    randint = rng.randint
    choice = rng.choice

    def phone(area):
        return "+86 %s %d%07d" % (area, randint(2, 8), randint(0, 9999999))

    def mobile():
        return "+86 1%d%d %04d %04d" % (choice((3, 5, 8)), randint(0, 9), randint(0, 9999), randint(0, 9999))

    def person():
        return "%s %s" % (choice(SURNAMES), choice(GIVEN))

    def insert(tbl, cols, rows):
        db.executemany('INSERT INTO "%s"(id, %s) VALUES (%s)' % (
            tbl, ", ".join('"%s"' % c for c in cols), ", ".join("?" * (len(cols) + 1))), rows)

    # -- catalogue: products, price lists (scope '')
    rows = []
    prod = []   # (id, price, tax)
    t0 = START - 30 * DAY
    for i in range(n_prod):
        fam, fname, unit, base = FAMILIES[i % len(FAMILIES)]
        size = SIZES[(i // len(FAMILIES)) % len(SIZES)]
        mat = MATERIALS[(i // (len(FAMILIES) * len(SIZES))) % len(MATERIALS)]
        ms = g.ms_after(t0, 20 * DAY)
        pid = g.uuid7(ms)
        price = base * (1 + SIZES.index(size)) // 2 + randint(0, 99) * 100
        tax = 1300 if fam not in ("SK",) else 900
        rows.append((pid, "%s-%s-%04d" % (fam, size, i), "%s %s %s" % (fname, size, mat), unit,
                     price, tax, 0 if rand() < 0.05 else 1, ts(ms)))
        prod.append((pid, price, tax))
        recs.append((ms, 3, "product", pid, ""))
    insert("product", ("sku", "name", "unit", "list_price", "tax_rate", "active", "created_at"), rows)
    lists = []
    rows = []
    items = []
    for i in range(R + 1):
        ms = g.ms_after(t0 + 20 * DAY, 5 * DAY)
        lid = g.uuid7(ms)
        nm = "Standard prices %d" % 2024 if i == 0 else "%s distributor prices" % regions[i - 1][0].title()
        rows.append((lid, nm, "CNY", "2024-01-01", None if i == 0 else "2026-12-31", ts(ms)))
        recs.append((ms, 4, "price_list", lid, ""))
        lists.append(lid)
        for pid, price, _ in prod:
            if i == 0 or rand() < 0.25:
                ims = g.ms_after(ms, DAY)
                iid = g.uuid7(ims)
                items.append((iid, lid, pid, price if i == 0 else price * randint(80, 95) // 100, ts(ims)))
                recs.append((ims, 5, "price_list_item", iid, ""))
    insert("price_list", ("name", "currency", "valid_from", "valid_to", "created_at"), rows)
    insert("price_list_item", ("price_list", "product", "price", "created_at"), items)

    # -- customers
    level = weighted(rng, [("A", 12), ("B", 30), ("C", 58)])
    cstatus = weighted(rng, [("active", 70), ("prospect", 15), ("dormant", 10), ("lost", 5)])
    rows = []
    cust = []   # (id, ms, region index, city tuple, owner)
    for i in range(n_cust):
        ri = i % R if rand() < 0.3 else min(R - 1, int(rand() ** 1.4 * R))   # uneven regions
        code, cities = regions[ri]
        city = choice(cities)
        cname, area, lat, lon, districts = city
        ind, industry = choice(INDUSTRIES)
        brand = choice(BRANDS)
        ms = g.ms_after(START, END - START - 60 * DAY)
        cid = g.uuid7(ms)
        slug = "%s%s%d" % (brand.lower(), ind.split()[0].lower(), i)
        owner = choice(reps_of[code])
        parent = None
        if cust and rand() < 0.04:
            p = cust[randint(max(0, len(cust) - 5000), len(cust) - 1)]
            if p[2] == ri:
                parent = p[0]
        lv = level()
        rows.append((cid, "C%06d" % (i + 1), "%s %s %s %s" % (cname, brand, ind, choice(SUFFIXES)),
                     "No. %d %s Road, %s District" % (randint(1, 999), choice(ROADS), choice(districts)),
                     cname, "%06d" % randint(100000, 860000), phone(area), "sales@%s.cn" % slug,
                     "www.%s.cn" % slug if rand() < 0.6 else None, industry, lv, choice(CTYPES),
                     cstatus(), choice(RATINGS), {"A": 50, "B": 20, "C": 5}[lv] * randint(1, 20) * 1000000,
                     lists[ri + 1] if rand() < 0.4 else lists[0], parent, person(), code, code, owner,
                     None if rand() < 0.8 else "Prefers delivery before the 20th of the month", ts(ms)))
        cust.append((cid, ms, ri, city, owner))
        recs.append((ms, 1, "customer", cid, code))
    insert("customer", ("code", "name", "address", "city", "postcode", "phone", "email", "website",
                        "industry", "level", "type", "status", "credit_rating", "credit_limit",
                        "price_list", "parent_customer", "finance_contact", "department", "region",
                        "owner", "notes", "created_at"), rows)
    say("customers: %d (%.1f s)" % (n_cust, time.time() - t_start))

    # -- contacts
    rows = []
    contacts_of = [[] for _ in range(n_cust)]
    gender = weighted(rng, [("male", 60), ("female", 38), ("other", 2)])
    for i in range(n_contact):
        ci = i if i < n_cust else randint(0, n_cust - 1)
        cid, cms, ri, city, owner = cust[ci]
        ms = g.ms_after(cms, 120 * DAY)
        kid = g.uuid7(ms)
        nm = person()
        by = randint(1960, 2000)
        rows.append((kid, cid, nm, gender(), choice(TITLES), choice(CDEPTS), None if rand() < 0.7 else person(),
                     phone(city[1]), mobile(), "%s@%s" % (nm.lower().replace(" ", "."), "example.cn"),
                     None if rand() < 0.8 else phone(city[1]),
                     None if rand() < 0.3 else "%04d-%02d-%02d" % (by, randint(1, 12), randint(1, 28)),
                     None if rand() < 0.5 else choice(HOBBIES), None, owner, ts(ms)))
        contacts_of[ci].append((kid, ms))
        recs.append((ms, 2, "contact", kid, regions[ri][0]))
    insert("contact", ("customer", "name", "gender", "title", "department", "supervisor", "phone",
                       "mobile", "email", "home_phone", "birthday", "hobbies", "notes", "owner",
                       "created_at"), rows)
    say("contacts: %d (%.1f s)" % (n_contact, time.time() - t_start))

    # -- opportunities
    stage = weighted(rng, STAGES)
    rows = []
    for i in range(n_opp):
        cid, cms, ri, city, owner = cust[randint(0, n_cust - 1)]
        ms = g.ms_after(cms, 365 * DAY)
        oid = g.uuid7(ms)
        st = stage()
        fam = choice(FAMILIES)[1]
        rows.append((oid, cid, "%s supply, %s" % (fam, choice(["new plant", "renovation", "annual contract",
                                                                "replacement", "pipeline project"])),
                     st, randint(5, 500) * 100000, PROB[st], day(ms + randint(30, 180) * DAY), owner,
                     None, ts(ms)))
        recs.append((ms, 7, "opportunity", oid, regions[ri][0]))
    insert("opportunity", ("customer", "title", "stage", "amount", "probability", "expected_close",
                           "owner", "notes", "created_at"), rows)

    # -- visits
    vstat = weighted(rng, VSTAT)
    rows = []
    for i in range(n_visit):
        ci = randint(0, n_cust - 1)
        cid, cms, ri, city, owner = cust[ci]
        kids = contacts_of[ci]
        k = choice(kids) if kids and rand() < 0.9 else None
        ms = g.ms_after(max(cms, k[1]) if k else cms, 400 * DAY)
        vid = g.uuid7(ms)
        st = vstat()
        planned = ms + randint(1, 14) * DAY // 2
        started = planned + randint(-3600, 3600) * 1000 if st in ("completed", "in_progress") else None
        ended = started + randint(20, 150) * 60000 if st == "completed" else None
        done = st == "completed"
        rows.append((vid, cid, k[0] if k else None, owner, st, ts(planned),
                     ts(started) if started else None, ts(ended) if ended else None,
                     int(city[2] * 1e6) + randint(-150000, 150000) if started else None,
                     int(city[3] * 1e6) + randint(-150000, 150000) if started else None,
                     choice(PURPOSES), choice(OUTCOMES) if done else None, None,
                     choice(NEXT) if done and rand() < 0.7 else None,
                     day(ended + randint(3, 30) * DAY) if done and rand() < 0.7 else None, ts(ms)))
        recs.append((ms, 6, "visit", vid, regions[ri][0]))
    insert("visit", ("customer", "contact", "rep", "status", "planned_at", "started_at", "ended_at",
                     "latitude", "longitude", "purpose", "outcome", "notes", "next_step",
                     "next_step_due", "created_at"), rows)
    say("opportunities %d, visits %d (%.1f s)" % (n_opp, n_visit, time.time() - t_start))

    # -- orders and their lines (n_line spread over the orders, 1 to ~13 each)
    ostat = weighted(rng, OSTAT)
    rows = []
    lines = []
    left = n_line
    for i in range(n_order):
        cid, cms, ri, city, owner = cust[randint(0, n_cust - 1)]
        ms = g.ms_after(cms, 500 * DAY)
        oid = g.uuid7(ms)
        st = ostat()
        rows.append((oid, cid, None, st, ts(ms) if st != "draft" else None, day(ms + randint(7, 45) * DAY),
                     owner, 0, None, None, None if rand() < 0.9 else "Deliver to site warehouse", ts(ms)))
        recs.append((ms, 10, "sales_order", oid, regions[ri][0]))
        rem = n_order - i
        nl = left if rem == 1 else max(1, min(left - (rem - 1), int(rand() * 2 * left / rem) + 1))
        left -= nl
        lms = ms
        for _ in range(nl):
            lms += 1
            while lms in g.used:
                lms += 1
            g.used.add(lms)
            lid = g.uuid7(lms)
            pid, price, tax = prod[int(rand() ** 2 * n_prod)]
            lines.append((lid, oid, pid, randint(1, 200) * 1000 if rand() < 0.9 else randint(1, 5000) * 100,
                          price, choice((0, 0, 0, 300, 500, 1000)), tax, ts(lms)))
            recs.append((lms, 11, "order_line", lid, regions[ri][0]))
    insert("sales_order", ("customer", "quote", "status", "ordered_at", "due_date", "owner",
                           "credit_override", "credit_override_by", "credit_override_at", "notes",
                           "created_at"), rows)
    insert("order_line", ('order', "product", "quantity", "unit_price", "discount", "tax_rate",
                          "created_at"), lines)
    rows = lines = None
    say("orders %d, order lines %d (%.1f s)" % (n_order, n_line, time.time() - t_start))

    # -- the log and the clocks, in creation order
    recs.sort()
    db.execute("CREATE TEMP TABLE gen_rec(ms INTEGER PRIMARY KEY, tbl TEXT, rid TEXT, scope TEXT)")
    db.executemany("INSERT INTO gen_rec VALUES (?, ?, ?, ?)", ((r[0], r[2], r[3], r[4]) for r in recs))
    n_rec = len(recs)
    g.recs = recs = g.used = None
    parts = []
    for (tbl,) in db.execute("SELECT tbl FROM fs_entity ORDER BY ord").fetchall():
        cols = [c for (c,) in db.execute("SELECT name FROM pragma_table_info(?) ORDER BY cid", (tbl,))
                if c != "id"]
        obj = ", ".join("'%s', t.\"%s\"" % (c, c) for c in cols)
        parts.append("SELECT r.ms, r.tbl, r.rid, json_object(%s) AS val, r.scope FROM gen_rec r "
                     "JOIN \"%s\" t ON t.id = r.rid WHERE r.tbl = '%s'" % (obj, tbl, tbl))
    db.execute("INSERT INTO fs_log(tbl, rid, op, col, val, hlc, device, author, scope) "
               "SELECT tbl, rid, 'I', NULL, val, ms << 16, ?, 'import', scope FROM (%s) ORDER BY ms"
               % " UNION ALL ".join(parts), (device,))
    db.execute("INSERT INTO fs_clock(tbl, rid, col, hlc, device, seq) "
               "SELECT tbl, rid, '', hlc, device, seq FROM fs_log WHERE device = ?", (device,))
    (maxhlc,) = db.execute("SELECT max(hlc) FROM fs_log WHERE device = ?", (device,)).fetchone()
    db.execute("INSERT INTO fs_device(id, user, serial, created_at, revoked_at, pushed_hlc) "
               "VALUES (?, 'import', ?, ?, ?, ?)",
               (device, "%032x" % (a.seed & 0xFFFFFFFF), ts(START - 31 * DAY), ts(END + DAY), maxhlc))
    db.execute("INSERT INTO fs_meta(k, v) VALUES ('hlc', ?) ON CONFLICT(k) DO UPDATE SET v = "
               "max(v, excluded.v)", (maxhlc,))
    db.execute("DROP TABLE gen_rec")
    db.execute("COMMIT")
    say("log and clocks: %d records (%.1f s)" % (n_rec, time.time() - t_start))
    if a.docs:
        with open(a.docs, "w") as f:
            cur = db.execute("SELECT json_insert(val, '$._id', rid, '$.type', tbl, '$.scope', "
                             "coalesce(scope, '')) FROM fs_log WHERE device = ? ORDER BY seq", (device,))
            while True:
                chunk = cur.fetchmany(10000)
                if not chunk:
                    break
                f.write("".join(r[0] + "\n" for r in chunk))
        say("documents: %s (%.1f s)" % (a.docs, time.time() - t_start))
    db.close()
    print(json.dumps({"dir": a.dir, "records": n_rec, "customers": n_cust, "contacts": n_contact,
                      "opportunities": n_opp, "visits": n_visit, "orders": n_order, "order_lines": n_line,
                      "products": n_prod, "regions": [c for c, _ in regions],
                      "reps": [{"name": n, "region": c} for n, c in reps],
                      "device": device, "seconds": round(time.time() - t_start, 1)}))


if __name__ == "__main__":
    main()
