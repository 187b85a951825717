"""Personal identification numbers and tax codes are validated as the law defines them."""

import pytest

from pipeline.records.identifiers import (
    is_valid_personal_id,
    is_valid_tax_code,
    parse_personal_id,
    tax_check_digit,
    validate_tax_code,
)


def test_personal_id_decodes_province_sex_and_birth_year():
    pid = parse_personal_id("079203001234")
    assert (pid.province_code, pid.sex, pid.birth_year) == (79, "male", 2003)
    assert parse_personal_id("001185000001").sex == "female"
    assert parse_personal_id("001185000001").birth_year == 1985


@pytest.mark.parametrize("bad", ["07920300123", "0792030012345", "000203001234", "097203001234", "07920300123x", ""])
def test_personal_id_rejects_wrong_length_province_or_characters(bad):
    assert not is_valid_personal_id(bad)


def test_tax_code_check_digit_follows_the_weighted_sum():
    # 0100109106: 0*31+1*29+0*23+0*19+1*17+0*13+9*7+1*5+0*3 = 114; 114 mod 11 = 4; 10-4 = 6
    assert tax_check_digit("010010910") == 6
    assert is_valid_tax_code("0100109106")
    assert not is_valid_tax_code("0100109105")


def test_tax_code_accepts_a_branch_suffix():
    assert validate_tax_code("0100109106-001") == "0100109106-001"
    assert not is_valid_tax_code("0100109106-01")


def test_tax_code_whose_sum_is_divisible_by_eleven_has_no_valid_check_digit():
    # find nine digits with weighted sum ≡ 0 (mod 11): such codes are never issued
    nine = next(f"{n:09d}" for n in range(10**8, 10**8 + 10000) if tax_check_digit(f"{n:09d}") is None)
    assert all(not is_valid_tax_code(nine + str(d)) for d in range(10))


@pytest.mark.parametrize("wrong", ["01001091", "0100109106"])
def test_tax_check_digit_refuses_anything_but_nine_digits(wrong):
    # the weights are those of the first nine digits: 8 or 10 digits must not yield a check digit
    with pytest.raises(ValueError):
        tax_check_digit(wrong)
