"""Validation of Vietnamese identifiers found in records.

* Số định danh cá nhân (personal identification number, Decree 137/2015/NĐ-CP as amended):
  12 digits = province/city code of birth registration (001–096) + century/gender digit +
  last two digits of the birth year + 6 random digits. No check digit.
* Mã số thuế / mã số doanh nghiệp / mã số hộ kinh doanh: 10 digits, the 10th a check digit over
  the first nine with weights 31, 29, 23, 19, 17, 13, 7, 5, 3: check = 10 − (sum mod 11); a
  remainder that gives 10 (sum mod 11 == 0) is never issued. An optional '-NNN' suffix names a
  dependent unit (branch).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TAX_WEIGHTS = (31, 29, 23, 19, 17, 13, 7, 5, 3)

# Century/gender digit: 0/1 = 20th century male/female, 2/3 = 21st, 4/5 = 22nd, 6/7 = 23rd, 8/9 = 24th.
_CENTURY_BASE = {0: 1900, 1: 1900, 2: 2000, 3: 2000, 4: 2100, 5: 2100, 6: 2200, 7: 2200, 8: 2300, 9: 2300}


@dataclass(frozen=True)
class PersonalId:
    province_code: int
    sex: str  # "male" | "female"
    birth_year: int


def parse_personal_id(value: str) -> PersonalId:
    """Parse and validate a 12-digit personal identification number; ValueError if invalid."""
    digits = re.sub(r"\s", "", value or "")
    if not re.fullmatch(r"\d{12}", digits):
        raise ValueError("a personal identification number has exactly 12 digits")
    province = int(digits[:3])
    if not 1 <= province <= 96:
        raise ValueError(f"province code {digits[:3]} is not between 001 and 096")
    century_digit = int(digits[3])
    year = _CENTURY_BASE[century_digit] + int(digits[4:6])
    return PersonalId(province_code=province, sex="male" if century_digit % 2 == 0 else "female", birth_year=year)


def is_valid_personal_id(value: str) -> bool:
    try:
        parse_personal_id(value)
    except ValueError:
        return False
    return True


def tax_check_digit(first_nine: str) -> int | None:
    """Check digit for nine digits, or None when no valid check digit exists (remainder 0)."""
    total = sum(int(d) * w for d, w in zip(first_nine, TAX_WEIGHTS, strict=True))
    check = 10 - total % 11
    return None if check == 10 or check > 9 else check if check >= 0 else None


def validate_tax_code(value: str) -> str:
    """Validate a 10-digit tax/enterprise code with optional '-NNN' branch suffix; returns it normalised."""
    code = re.sub(r"\s", "", value or "")
    m = re.fullmatch(r"(\d{10})(?:-(\d{3}))?", code)
    if not m:
        raise ValueError("a tax code has 10 digits, optionally followed by -NNN")
    main = m.group(1)
    check = tax_check_digit(main[:9])
    if check is None:
        raise ValueError("the first nine digits admit no check digit (sum mod 11 is 0)")
    if int(main[9]) != check:
        raise ValueError(f"check digit is {main[9]}, expected {check}")
    return code


def is_valid_tax_code(value: str) -> bool:
    try:
        validate_tax_code(value)
    except ValueError:
        return False
    return True
