#!/usr/bin/env python3
"""Writes the hostile weather exports in this folder (run once; the files are committed).
Each is a way a real export can be broken. tests/cli/hostile.rs loads every one of them."""
import os, random

GOOD = '{"weather_data.city": "Zurich", "weather_data.date_time": "2019-06-04 14:05:13", "weather_data.currently_humidity": 0.43}'
def good(i):
    return GOOD.replace("14:05:13", "14:%02d:%02d" % (i // 60 % 60, i % 60))

def bi(*records):
    return ("[" + ",\n".join(records)).encode()

def w(name, data):
    with open(name, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())

rnd = random.Random(7)
w("truncated_mid_object.json", bi(good(1), '{"weather_data.city": "Oslo", "weather_data.date_time": "2019-06-04'))
w("truncated_mid_string.json", bi(good(1), '{"weather_data.city": "Os'))
w("truncated_mid_escape.json", bi(good(1), '{"weather_data.city": "Os\\'))
w("truncated_mid_unicode_escape.json", bi(good(1), '{"weather_data.city": "Os\\u00'))
w("truncated_then_more.json", bi(good(1), '{"weather_data.city": "Os', good(2)))
w("invalid_utf8_value.json", bi(good(1)) + b',\n{"weather_data.city": "Z\xff\xfeich", "weather_data.date_time": "2019-06-04 14:05:13"}')
w("invalid_utf8_key.json", bi(good(1)) + b',\n{"weather_data.c\xffty": "Oslo", "weather_data.date_time": "2019-06-04 14:05:13"}')
w("raw_nul_in_string.json", bi(good(1)) + b',\n{"weather_data.city": "O\x00slo", "weather_data.date_time": "2019-06-04 14:05:13"}')
w("escaped_nul.json", bi(good(1), '{"weather_data.city": "O\\u0000slo", "weather_data.date_time": "2019-06-04 14:05:13"}'))
w("nul_between_records.json", bi(good(1)) + b",\n\x00\x00\x00\n" + good(2).encode())
w("deeply_nested_value.json", bi(good(1), '{"weather_data.city": ' + "[" * 20000 + "]" * 20000 + ', "weather_data.date_time": "2019-06-04 14:05:13"}'))
w("unbalanced_deep_nesting.json", bi(good(1), "[" * 50000))
w("object_where_scalar_belongs.json", bi(good(1), '{"weather_data.city": {"name": "Oslo"}, "weather_data.date_time": "2019-06-04 14:05:13"}'))
w("arrays_instead_of_objects.json", "[1, 2, 3]\n[4, 5]\n" + good(1) + "\n")
w("numbers_instead_of_objects.json", "1\n2.5\n-3\n" + good(1) + "\n")
w("strings_instead_of_objects.json", '"a"\n"b"\n' + good(1) + "\n")
w("duplicate_keys.json", bi(good(1), '{"weather_data.city": "Oslo", "weather_data.city": "Bergen", "weather_data.date_time": "2019-06-04 14:05:13"}'))
w("every_field_wrong_type.json", bi(good(1),
    '{"weather_data.city": 123, "weather_data.date_time": "2019-06-04 14:05:13", "weather_data.currently_humidity": true}',
    '{"weather_data.city": "Oslo", "weather_data.date_time": 20190604, "weather_data.currently_humidity": 0.5}',
    '{"weather_data.city": "Oslo", "weather_data.date_time": "2019-06-04 14:05:13", "weather_data.currently_windspeed": [1]}',
    '{"weather_data.city": false, "weather_data.date_time": null}'))
w("huge_numbers.json", bi(good(1), GOOD.replace("0.43", "1e400"), GOOD.replace("0.43", "0.5").replace('}', ', "weather_data.currently_temperature": 1.7976931348623157e308}')))
w("tiny_numbers.json", bi(good(1), GOOD.replace("0.43", "1e-400").replace("14:05", "15:05"), GOOD.replace("0.43", "5e-324").replace("14:05", "16:05")))
w("infinity_tokens.json", bi(good(1), GOOD.replace("0.43", "Infinity"), GOOD.replace("0.43", "-Infinity")))
w("nan_tokens.json", bi(good(1), GOOD.replace("0.43", "NaN").replace("14:05", "15:05"), GOOD.replace("0.43", "-NaN").replace("14:05", "16:05"), GOOD.replace("0.43", '"NaN"').replace("14:05", "17:05")))
w("year_0.json", bi(good(1), GOOD.replace("2019-06-04", "0000-06-04")))
w("year_9999.json", bi(good(1), GOOD.replace("2019-06-04 14:05:13", "9999-12-31 23:59:59")))
w("time_zones.json", bi(good(1), GOOD.replace("2019-06-04 14:05:13", "2019-06-04T16:05:13+02:00"), GOOD.replace("2019-06-04 14:05:13", "2019-06-04T09:05:13.123456-05:00")))
w("leap_second.json", bi(good(1), GOOD.replace("2019-06-04 14:05:13", "2016-12-31 23:59:60")))
w("impossible_dates.json", bi(good(1), GOOD.replace("2019-06-04", "2019-02-30"), GOOD.replace("14:05:13", "25:61:61")))
w("empty.json", b"")
w("only_open_bracket.json", "[")
w("only_close_bracket.json", "]")
w("whitespace_only.json", " \n\t\r\n   \n")
w("bom_only.json", b"\xef\xbb\xbf")
w("binary_renamed.json", b"\x89PNG\r\n\x1a\n" + bytes(rnd.getrandbits(8) for _ in range(20000)))
w("crlf_mixed.json", ("[" + good(1) + ",\r\n" + good(2) + ",\n" + good(3) + "\r\n").encode())
w("escaped_keys.json", bi(good(1), '{"weather_data.c\\u0069ty": "Oslo", "weather_data.date_time": "2019-06-04 14:05:13"}'))
w("unicode_values.json", bi(good(1), GOOD.replace("Zurich", "Z\u00fcrich \U0001F6F4 \u05e9\u05dc\u05d5\u05dd")))
w("long_string_value.json", bi(good(1), GOOD.replace("Zurich", "x" * 1_000_000)))
w("unknown_keys_only.json", bi(good(1), '{"foo": 1, "bar": [1, {"x": 2}]}'))
w("empty_object.json", bi(good(1), "{}"))
w("trailing_garbage_same_line.json", bi(good(1), good(2) + " xyz", good(3)))
w("two_objects_one_line.json", bi(good(1), good(2) + good(3)))
w("comments.json", "[" + good(1) + ",\n// a comment\n" + good(2) + "\n")
w("single_quotes.json", bi(good(1), "{'weather_data.city': 'Oslo', 'weather_data.date_time': '2019-06-04 14:05:13'}"))
w("raw_control_characters.json", bi(good(1), '{"weather_data.city": "Os\tlo", "weather_data.date_time": "2019-06-04 14:05:13"}'))
w("leading_zero_numbers.json", bi(good(1), GOOD.replace("0.43", "00.43")))
w("numbers_as_strings_with_spaces.json", bi(good(1), GOOD.replace("0.43", '" 0.5 "').replace("14:05", "15:05")))
w("closed_twice.json", ("[" + good(1) + "]]\n]").encode())
w("nested_array_of_records.json", "[[" + good(1) + "]]")
