r"""The `numbers` view: amounts written in words or in any currency read as digits and codes.

"thirty-nine euros per seat", "₹2,000", "1.200 kr", "a fifth off" and "half price" state
prices as surely as "$39" does. In this view numbers in words become digits
("forty-nine" → 49, "two thousand five hundred" → 2500), fractions become percentages
("a fifth" → 20%, "half" → 50%), and currency symbols and words next to a number become
ISO codes marked with the generic currency sign ¤ ("₹2,000" → "¤inr 2,000", "1.200 kr"
→ "1.200 ¤sek", "5 bucks" → "5 ¤usd", "a dollar" → "1 ¤usd"), so one pattern
(`¤[a-z]{3}\s?\d|\d\s?¤[a-z]{3}`) covers every currency, and the mark keeps "try 3 times"
from reading as Turkish lira. A lone "one" stays a word ("one of the tasks" is no amount).
"""

from __future__ import annotations

import re

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}  # fmt: skip
_SCALES = {
    "hundred": 100, "thousand": 1_000, "grand": 1_000, "lakh": 100_000, "lakhs": 100_000,
    "million": 1_000_000, "crore": 10_000_000, "crores": 10_000_000,
    "billion": 1_000_000_000,
}  # fmt: skip
_WORD = "|".join(sorted([*_UNITS, *_SCALES], key=len, reverse=True))
_NUMBER_WORDS = re.compile(
    rf"(?<![\w*#-])(?:an? )?(?:{_WORD})(?:(?:[\s-]+(?:and[\s-]+)?)(?:{_WORD}))*(?![\w-])"
)
_FRACTIONS = {"half": 50, "third": 33, "quarter": 25, "fifth": 20, "tenth": 10}
# "half a minute", "a quarter of an hour": a span of time, not a share of a price
_FRACTION = re.compile(
    r"(?<!\w)(?:(a|an|one|two|three|four)[\s-]+)?(half|halves|thirds?|quarters?|fifths?|tenths?)"
    r"(?!\w)(?![\s-]+(?:of[\s-]+)?an?[\s-]+(?:second|minute|hour|day|week|dozen)s?(?!\w))"
)
_SLANG = (
    (re.compile(r"(?<!\w)a fiver(?!\w)"), "5 ¤gbp"),
    (re.compile(r"(?<!\w)a tenner(?!\w)"), "10 ¤gbp"),
)
# One unit of a currency named in words: "under a dollar a day", "a euro per seat"; not
# the name of a sign, a field or a weight ("a dollar sign", "a euro amount", "a pound of").
_ONE_UNIT = {
    "buck": "usd", "dollar": "usd", "quid": "gbp", "pound": "gbp", "euro": "eur",
    "franc": "chf", "rupee": "inr", "cent": "usd", "penny": "gbp",
}  # fmt: skip
_ONE = re.compile(
    rf"(?<!\w)an? ({'|'.join(_ONE_UNIT)})(?!\w)(?![\s-]+(?:signs?|symbols?|keys?|bills?|notes?"
    r"|coins?|amounts?|values?|figures?|fields?|columns?|formats?|currency|of|for|or)(?!\w))"
)

_SYMBOLS = {
    "r$": "brl", "us$": "usd", "c$": "cad", "a$": "aud", "s$": "sgd", "hk$": "hkd",
    "nz$": "nzd", "mx$": "mxn", "$": "usd", "€": "eur", "£": "gbp",
    "¥": "jpy", "₩": "krw", "₹": "inr", "₽": "rub", "₺": "try", "₪": "ils", "₫": "vnd",
    "₱": "php", "฿": "thb", "₦": "ngn", "₴": "uah",
}  # fmt: skip
_SYMBOL = re.compile("|".join(re.escape(s) for s in sorted(_SYMBOLS, key=len, reverse=True)))
_CURRENCY_WORDS = {
    "usd": "usd", "dollar": "usd", "dollars": "usd", "buck": "usd", "bucks": "usd",
    "eur": "eur", "euro": "eur", "euros": "eur", "gbp": "gbp", "pound": "gbp",
    "pounds": "gbp", "quid": "gbp", "yen": "jpy", "jpy": "jpy", "won": "krw", "krw": "krw",
    "rupee": "inr", "rupees": "inr", "rs": "inr", "inr": "inr", "kr": "sek", "kronor": "sek",
    "krona": "sek", "kronur": "sek", "kroner": "sek", "krone": "sek", "sek": "sek",
    "nok": "sek", "dkk": "sek", "franc": "chf", "francs": "chf", "chf": "chf",
    "reais": "brl", "brl": "brl", "ruble": "rub", "rubles": "rub", "rouble": "rub",
    "roubles": "rub", "rub": "rub", "lira": "try", "liras": "try", "try": "try",
    "shekel": "ils", "shekels": "ils", "ils": "ils", "zloty": "pln", "zlotys": "pln",
    "złoty": "pln", "zł": "pln", "pln": "pln", "yuan": "cny", "rmb": "cny", "cny": "cny",
    "peso": "mxn", "pesos": "mxn", "mxn": "mxn", "rand": "zar", "zar": "zar", "cad": "cad",
    "aud": "aud", "cent": "usd", "cents": "usd", "pence": "gbp", "fr": "chf",
    "czk": "czk", "kč": "czk", "kc": "czk", "huf": "huf", "forint": "huf", "ron": "ron",
    "lei": "ron", "aed": "aed", "dirham": "aed", "dirhams": "aed", "sar": "sar",
    "riyal": "sar", "riyals": "sar", "sgd": "sgd", "hkd": "hkd", "nzd": "nzd", "myr": "myr",
    "ringgit": "myr", "baht": "thb", "thb": "thb", "rupiah": "idr", "idr": "idr",
    "naira": "ngn", "ngn": "ngn", "kes": "kes", "shilling": "kes", "shillings": "kes",
    # a dollar, franc or peso named with its country ("840 Australian dollars")
    **{f"{country} {unit}": code for country, code in (
        ("us", "usd"), ("u.s.", "usd"), ("american", "usd"), ("australian", "aud"),
        ("canadian", "cad"), ("new zealand", "nzd"), ("singapore", "sgd"),
        ("hong kong", "hkd"),
    ) for unit in ("dollar", "dollars")},
    **{f"{adjective} {unit}": code for adjective, units, code in (
        ("swiss", ("franc", "francs"), "chf"), ("mexican", ("peso", "pesos"), "mxn"),
        ("indian", ("rupee", "rupees"), "inr"), ("japanese", ("yen",), "jpy"),
        ("british", ("pound", "pounds"), "gbp"), ("brazilian", ("real", "reais"), "brl"),
        ("swedish", ("krona", "kronor"), "sek"), ("norwegian", ("krone", "kroner"), "sek"),
        ("danish", ("krone", "kroner"), "sek"), ("south african", ("rand",), "zar"),
    ) for unit in units},
    "pounds sterling": "gbp",
    # crowns and korunas in English ("399 Swedish crowns", "800 Czech korunas")
    "crowns": "sek", "crown": "sek", "koruna": "czk", "korunas": "czk", "koruny": "czk",
    "czech crowns": "czk", "czech korunas": "czk", "swedish crowns": "sek",
    "danish crowns": "sek", "norwegian crowns": "sek",
}  # fmt: skip
_CURRENCY = "|".join(sorted((re.escape(w) for w in _CURRENCY_WORDS), key=len, reverse=True))
# A currency word after an amount ("1.200 kr"), or before one ("chf 20"); "try" and
# "won" are words too, so they count only after a number.
# A magnitude may sit between them: "2k euros", "1.5 lakh rupees", "3m yen".
_AFTER = re.compile(
    rf"(\d[\d.,\s]*?(?:\s?(?:k|m|mn|bn|lakh|lakhs|crore|crores)\b)?)\s?(?<!¤)({_CURRENCY})(?!\w)"
)
_BEFORE_WORDS = (
    "usd|eur|gbp|chf|inr|rs|kr|sek|nok|dkk|brl|pln|cny|rmb|jpy|cad|aud|mxn|zar|rub|fr|czk|huf"
    "|aed|sgd|hkd|nzd|myr|thb|idr|ngn|kes"
)
_BEFORE = re.compile(rf"(?<![\w$¤])({_BEFORE_WORDS})\.?\s?(?=\d)")
_SPACES = re.compile(r" {2,}")
# "12,- €", "18.– CHF": a round price written with a dash for the cents
_ROUND_DASH = re.compile(r"(\d)[.,][-–—](?![\w-])")


def _value(words: str) -> int | None:
    """ "forty-nine" → 49, "two thousand five hundred" → 2500; None for a lone "one"/"a"."""
    parts = [w for w in re.split(r"[\s-]+", words) if w != "and"]
    if parts and parts[0] in ("a", "an"):
        parts = ["one", *parts[1:]]
    if parts in (["one"], ["zero"]):
        return None
    total, current = 0, 0
    for part in parts:
        if part in _UNITS:
            current += _UNITS[part]
        elif part == "hundred":
            current = max(current, 1) * 100
        else:
            total += max(current, 1) * _SCALES[part]
            current = 0
    return total + current


# Words before a clock time or a year said in pairs ("at five fifteen", "in twenty
# twenty-four"): these pairs are no price.
_TIME_OR_YEAR = re.compile(
    r"(?:\b(?:at|by|until|till|from|before|after|since|in|of|around|year|about)\s+)$"
)


def _price_pair(text: str, before: str) -> str | None:
    """ "forty-nine ninety-nine" → "49.99", "four ninety-nine" → "4.99", "twelve fifty"
    → "12.50": two groups of at most two digits spoken one after the other, the way a
    price is read out; None for anything else (a clock time or a year included)."""
    if " and " in f" {text} ":
        return None
    parts = re.split(r"[\s-]+", text)
    if any(part not in _UNITS for part in parts):
        return None
    groups: list[int] = []
    for part in parts:
        value = _UNITS[part]
        joinable = groups and groups[-1] >= 20 and groups[-1] % 10 == 0 and value < 10
        if joinable:
            groups[-1] += value
        else:
            groups.append(value)
    if len(groups) != 2 or groups[1] < 10 or groups[0] == 0:
        return None
    if _TIME_OR_YEAR.search(before) is not None:
        return None
    return f"{groups[0]}.{groups[1]:02d}"


# "3 grand", "2 thousand", "1.5 million": digits with a scale in words
_DIGIT_SCALE = re.compile(rf"(?<![\w.,])(\d+(?:\.\d+)?) ?({'|'.join(_SCALES)})(?!\w)")


def _digit_scale(match: re.Match[str]) -> str:
    value = float(match.group(1)) * _SCALES.get(match.group(2), 100)
    return f"{value:.0f}" if value == int(value) else f"{value:.2f}"


def _number(match: re.Match[str]) -> str:
    text = match.group()
    pair = _price_pair(text, match.string[max(0, match.start() - 12) : match.start()])
    if pair is not None:
        return pair
    value = _value(text)
    if value is None:
        return text
    return str(value)


# "three hundred a quarter", "50 per quarter": a quarter after an amount is a billing
# period, not a share of a price
_AMOUNT_BEFORE = re.compile(rf"(?:\d|\b(?:{_WORD}))\s*(?:per|each|every)?\s*$")


def _fraction(match: re.Match[str]) -> str:
    count, name = match.group(1), match.group(2)
    if name == "quarter" and count in ("a", None):
        before = match.string[max(0, match.start() - 20) : match.start()]
        if _AMOUNT_BEFORE.search(before) is not None:
            return match.group()
    base = _FRACTIONS[name.rstrip("s") if name != "halves" else "half"]
    times = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, None: 1}[count]
    return f"{min(100, base * times)}%"


# Cheap substring tests first: most texts state no amount, and the passes below cost
# tens of microseconds each.
_WORD_HINTS = (
    *(w for w in _UNITS if w not in ("one", "zero")),
    *_SCALES,
    "half",
    "halves",
    "third",
    "quarter",
    "fifth",
    "tenth",
    "fiver",
    "tenner",
    *(f"a {unit}" for unit in _ONE_UNIT),
)
_DIGIT = re.compile(r"\d")


def numbers_view(text: str) -> str:
    """Amounts in digits and ISO codes; the text unchanged when it states none."""
    out = text
    if any(hint in text for hint in _WORD_HINTS):
        for pattern, replacement in _SLANG:
            out = pattern.sub(replacement, out)
        out = _ONE.sub(lambda m: f"1 ¤{_ONE_UNIT[m.group(1)]}", out)
        out = _FRACTION.sub(_fraction, out)
        out = _DIGIT_SCALE.sub(_digit_scale, out)
        out = _NUMBER_WORDS.sub(_number, out)
    if _DIGIT.search(out) is not None:
        out = _ROUND_DASH.sub(r"\1", out)
        out = _SYMBOL.sub(lambda m: f" ¤{_SYMBOLS[m.group()]} ", out)
        out = _AFTER.sub(lambda m: f"{m.group(1)} ¤{_CURRENCY_WORDS[m.group(2)]}", out)
        out = _BEFORE.sub(lambda m: f"¤{_CURRENCY_WORDS[m.group(1)]} ", out)
    return _SPACES.sub(" ", out).strip() if out != text else text
