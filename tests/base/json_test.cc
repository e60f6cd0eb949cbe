#include "base/json.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>

namespace kiln {
namespace {

JsonValue parse_ok(std::string_view text) {
  Result<JsonValue> result = parse_json(text);
  EXPECT_TRUE(result.ok()) << "parsing " << text << ": " << result.status().to_string();
  return result.ok() ? std::move(result).value() : JsonValue();
}

std::string parse_error(std::string_view text) {
  Result<JsonValue> result = parse_json(text);
  EXPECT_FALSE(result.ok()) << "parsing " << text << " succeeded";
  if (result.ok()) return "";
  EXPECT_EQ(result.status().code(), StatusCode::kDataLoss) << result.status().to_string();
  return result.status().message();
}

TEST(JsonTest, Literals) {
  EXPECT_TRUE(parse_ok("null").is_null());
  EXPECT_TRUE(parse_ok(" true ").as_bool());
  EXPECT_FALSE(parse_ok("\n\tfalse\r\n").as_bool());
  EXPECT_EQ(parse_ok("true").kind(), JsonKind::kBool);
  EXPECT_EQ(parse_ok("null").kind_name(), "null");
  EXPECT_EQ(parse_ok("[]").kind_name(), "array");
  EXPECT_EQ(parse_ok("{}").kind_name(), "object");
}

TEST(JsonTest, Integers) {
  JsonValue v = parse_ok("42");
  EXPECT_TRUE(v.is_number());
  EXPECT_TRUE(v.is_int());
  EXPECT_EQ(v.as_int(), 42);
  EXPECT_EQ(v.as_double(), 42.0);
  EXPECT_EQ(parse_ok("-0").as_int(), 0);
  EXPECT_EQ(parse_ok("-17").as_int(), -17);
  EXPECT_EQ(parse_ok("9223372036854775807").as_int(), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(parse_ok("-9223372036854775808").as_int(), std::numeric_limits<int64_t>::min());
  // Too big for int64: kept as a double only.
  JsonValue big = parse_ok("9223372036854775808");
  EXPECT_TRUE(big.is_number());
  EXPECT_FALSE(big.is_int());
  EXPECT_EQ(big.as_double(), 9223372036854775808.0);
  EXPECT_FALSE(parse_ok("-99999999999999999999999").is_int());
}

TEST(JsonTest, Doubles) {
  EXPECT_FALSE(parse_ok("1.0").is_int());
  EXPECT_EQ(parse_ok("1.5").as_double(), 1.5);
  EXPECT_EQ(parse_ok("-0.25").as_double(), -0.25);
  EXPECT_EQ(parse_ok("1e3").as_double(), 1000.0);
  EXPECT_FALSE(parse_ok("1e3").is_int());
  EXPECT_EQ(parse_ok("1E-2").as_double(), 0.01);
  EXPECT_EQ(parse_ok("-2.5e+1").as_double(), -25.0);
  EXPECT_EQ(parse_ok("0.1").as_double(), 0.1);
  EXPECT_EQ(parse_ok("2.2250738585072014e-308").as_double(), 2.2250738585072014e-308);
  EXPECT_TRUE(std::signbit(parse_ok("-0.0").as_double()));
  // Beyond double's range: overflow to infinity, underflow to zero (as Python does).
  EXPECT_EQ(parse_ok("1e400").as_double(), std::numeric_limits<double>::infinity());
  EXPECT_EQ(parse_ok("-1e400").as_double(), -std::numeric_limits<double>::infinity());
  EXPECT_EQ(parse_ok("1e-400").as_double(), 0.0);
  EXPECT_EQ(parse_ok("123456789e-420").as_double(), 0.0);
  EXPECT_EQ(parse_ok(std::string(400, '9')).as_double(), std::numeric_limits<double>::infinity());
  EXPECT_EQ(parse_ok("0." + std::string(400, '0') + "1").as_double(), 0.0);
}

TEST(JsonTest, PythonNonFiniteNumbers) {
  EXPECT_TRUE(std::isnan(parse_ok("NaN").as_double()));
  EXPECT_EQ(parse_ok("Infinity").as_double(), std::numeric_limits<double>::infinity());
  EXPECT_EQ(parse_ok("-Infinity").as_double(), -std::numeric_limits<double>::infinity());
  JsonValue v = parse_ok("[NaN, -Infinity, 1]");
  ASSERT_EQ(v.size(), 3u);
  EXPECT_FALSE(v.as_array()[0].is_int());
  EXPECT_EQ(v.to_json(), "[NaN,-Infinity,1]");
  parse_error("nan");
  parse_error("-NaN");
  parse_error("Inf");
}

TEST(JsonTest, Strings) {
  EXPECT_EQ(parse_ok(R"("")").as_string(), "");
  EXPECT_EQ(parse_ok(R"("abc")").as_string(), "abc");
  EXPECT_EQ(parse_ok(R"("a\"b\\c\/d\be\ff\ng\rh\ti")").as_string(), "a\"b\\c/d\be\ff\ng\rh\ti");
  EXPECT_EQ(parse_ok(R"("\u0041\u00e9\u20AC")").as_string(), "A\xC3\xA9\xE2\x82\xAC");
  EXPECT_EQ(parse_ok(R"("\u0000")").as_string(), std::string(1, '\0'));
  // A surrogate pair becomes one four-byte UTF-8 sequence (U+1F600).
  EXPECT_EQ(parse_ok(R"("\ud83d\ude00")").as_string(), "\xF0\x9F\x98\x80");
  EXPECT_EQ(parse_ok(R"("x\uDBFF\uDFFFy")").as_string(), "x\xF4\x8F\xBF\xBFy");
  // Raw UTF-8 passes through unchanged.
  EXPECT_EQ(parse_ok("\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"").as_string(),
            "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
}

TEST(JsonTest, BadStrings) {
  EXPECT_NE(parse_error(R"("\ud83d")").find("low surrogate"), std::string::npos);
  EXPECT_NE(parse_error(R"("\ud83dx")").find("low surrogate"), std::string::npos);
  EXPECT_NE(parse_error(R"("\ud83d\u0041")").find("a low surrogate"), std::string::npos);
  EXPECT_NE(parse_error(R"("\ude00")").find("high surrogate"), std::string::npos);
  EXPECT_NE(parse_error(R"("\u12G4")").find("hex digit"), std::string::npos);
  EXPECT_NE(parse_error(R"("\u12")").find("4 hex digits"), std::string::npos);
  EXPECT_NE(parse_error(R"("\x")").find("escape character"), std::string::npos);
  EXPECT_NE(parse_error("\"a\nb\"").find("escaped control character"), std::string::npos);
  EXPECT_NE(parse_error("\"abc").find("closing the string"), std::string::npos);
  EXPECT_NE(parse_error("\"abc\\").find("escape character"), std::string::npos);
  // Invalid UTF-8: a stray continuation byte, an overlong form, a truncated sequence, a surrogate.
  EXPECT_NE(parse_error("\"\x80\"").find("valid UTF-8, found byte 0x80"), std::string::npos);
  EXPECT_NE(parse_error("\"\xC0\xAF\"").find("valid UTF-8"), std::string::npos);
  EXPECT_NE(parse_error("\"\xE2\x82\"").find("valid UTF-8"), std::string::npos);
  EXPECT_NE(parse_error("\"\xED\xA0\x80\"").find("valid UTF-8"), std::string::npos);
  EXPECT_NE(parse_error("\"\xF4\x90\x80\x80\"").find("valid UTF-8"), std::string::npos);
  EXPECT_NE(parse_error("\"\xF0\x9F\x98").find("valid UTF-8"), std::string::npos);
}

TEST(JsonTest, ArraysAndObjects) {
  JsonValue v = parse_ok(R"({"b": [1, 2.5, "x", null, [], {}], "a": {"c": true}, "z": -1})");
  ASSERT_TRUE(v.is_object());
  ASSERT_EQ(v.size(), 3u);
  // Key order is kept.
  EXPECT_EQ(v.members()[0].key, "b");
  EXPECT_EQ(v.members()[1].key, "a");
  EXPECT_EQ(v.members()[2].key, "z");
  const JsonValue* b = v.find("b");
  ASSERT_NE(b, nullptr);
  ASSERT_EQ(b->size(), 6u);
  EXPECT_EQ(b->as_array()[0].as_int(), 1);
  EXPECT_EQ(b->as_array()[1].as_double(), 2.5);
  EXPECT_EQ(b->as_array()[2].as_string(), "x");
  EXPECT_TRUE(b->as_array()[3].is_null());
  EXPECT_TRUE(b->as_array()[4].is_array());
  EXPECT_TRUE(b->as_array()[5].is_object());
  EXPECT_EQ(v.find("a")->find("c")->as_bool(), true);
  EXPECT_EQ(v.find("missing"), nullptr);
  EXPECT_EQ(b->find("x"), nullptr);  // not an object
  EXPECT_TRUE(b->members().empty());
  EXPECT_EQ(parse_ok("[ ]").size(), 0u);
  EXPECT_EQ(parse_ok("{ }").size(), 0u);
  EXPECT_EQ(parse_ok("7").size(), 0u);
}

TEST(JsonTest, DuplicateKeysTakeTheLast) {
  EXPECT_EQ(parse_ok(R"({"a": 1, "a": 2})").find("a")->as_int(), 2);
  std::string big = "{";
  for (int i = 0; i < 40; ++i) big += "\"k" + std::to_string(i) + "\": " + std::to_string(i) + ",";
  big += "\"k3\": 99}";
  JsonValue v = parse_ok(big);
  EXPECT_EQ(v.size(), 41u);
  EXPECT_EQ(v.find("k3")->as_int(), 99);
}

TEST(JsonTest, LargeObjectLookup) {
  std::string text = "{";
  for (int i = 0; i < 10000; ++i) {
    if (i > 0) text += ",";
    text += "\"weight_" + std::to_string(i) + "\": {\"index\": " + std::to_string(i) + "}";
  }
  text += "}";
  JsonValue v = parse_ok(text);
  ASSERT_EQ(v.size(), 10000u);
  for (int i = 0; i < 10000; i += 7) {
    const JsonValue* entry = v.find("weight_" + std::to_string(i));
    ASSERT_NE(entry, nullptr) << i;
    EXPECT_EQ(*entry->get_int("index"), i);
  }
  EXPECT_EQ(v.find("weight_10000"), nullptr);
  // Copies rebuild their own index; moves keep it.
  JsonValue copy = v;
  v = JsonValue();
  ASSERT_NE(copy.find("weight_9999"), nullptr);
  EXPECT_EQ(*copy.find("weight_9999")->get_int("index"), 9999);
  JsonValue moved = std::move(copy);
  EXPECT_EQ(*moved.find("weight_42")->get_int("index"), 42);
}

TEST(JsonTest, SchemaAccessors) {
  JsonValue v = parse_ok(
      R"({"n": 3, "f": 1.5, "s": "text", "b": false, "a": [1, 2], "o": {"k": 1}, "z": null})");
  EXPECT_EQ(*v.get_int("n"), 3);
  EXPECT_EQ(*v.get_double("n"), 3.0);
  EXPECT_EQ(*v.get_double("f"), 1.5);
  EXPECT_EQ(*v.get_string("s"), "text");
  EXPECT_EQ(*v.get_bool("b"), false);
  EXPECT_EQ(v.get_array("a")->size(), 2u);
  EXPECT_EQ(*(*v.get_object("o"))->get_int("k"), 1);
  EXPECT_TRUE((*v.get("z"))->is_null());

  auto message = [](const auto& result) {
    EXPECT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
    return result.status().message();
  };
  EXPECT_EQ(message(v.get("x")), "expected key 'x' in object");
  EXPECT_EQ(message(v.get_int("x")), "expected key 'x' in object");
  EXPECT_EQ(message(v.get_int("s")), "key 's': expected an integer, found string");
  EXPECT_EQ(message(v.get_int("f")), "key 'f': expected an integer, found number 1.5");
  EXPECT_EQ(message(v.get_string("n")), "key 'n': expected a string, found number");
  EXPECT_EQ(message(v.get_bool("z")), "key 'z': expected a bool, found null");
  EXPECT_EQ(message(v.get_double("s")), "key 's': expected a number, found string");
  EXPECT_EQ(message(v.get_array("o")), "key 'o': expected an array, found object");
  EXPECT_EQ(message(v.get_object("a")), "key 'a': expected an object, found array");
  EXPECT_EQ(message((*v.get("a"))->get("k")), "expected an object with key 'k', found array");
  EXPECT_EQ(message(parse_ok("[]").expect_string()), "expected a string, found array");
  EXPECT_TRUE(v.expect_object().ok());
  EXPECT_EQ(parse_ok("1").expect_object().message(), "expected an object, found number");
  EXPECT_EQ(*parse_ok("true").expect_bool(), true);
  EXPECT_EQ(*parse_ok("-5").expect_int(), -5);
}

TEST(JsonTest, UncheckedAccessorsOnTheWrongKindAreHarmless) {
  const JsonValue text = parse_ok(R"("x")");
  EXPECT_FALSE(text.as_bool());
  EXPECT_EQ(text.as_int(), 0);
  EXPECT_EQ(text.as_double(), 0.0);
  EXPECT_TRUE(text.as_array().empty());
  EXPECT_TRUE(text.members().empty());
  EXPECT_EQ(parse_ok("[1]").as_string(), "");
  EXPECT_EQ(parse_ok("1.5").as_int(), 0);
  EXPECT_FALSE(parse_ok("1").as_bool());
}

TEST(JsonTest, Factories) {
  std::vector<JsonMember> members;
  members.push_back({"name", JsonValue::make_string("conv")});
  members.push_back(
      {"dims", JsonValue::make_array({JsonValue::make_int(3), JsonValue::make_int(4)})});
  members.push_back({"scale", JsonValue::make_double(0.5)});
  members.push_back({"bias", JsonValue::make_bool(true)});
  members.push_back({"none", JsonValue()});
  JsonValue v = JsonValue::make_object(std::move(members));
  EXPECT_EQ(*v.get_string("name"), "conv");
  EXPECT_EQ(v.to_json(), R"({"name":"conv","dims":[3,4],"scale":0.5,"bias":true,"none":null})");
  EXPECT_EQ(JsonValue::make_double(2.0).to_json(), "2.0");
  EXPECT_FALSE(parse_ok(JsonValue::make_double(2.0).to_json()).is_int());
}

TEST(JsonTest, RoundTrip) {
  const std::string text =
      R"({"graph":{"nodes":[{"target":"aten.add.Tensor","inputs":[{"name":"x","arg":{"as_tensor":)"
      R"({"name":"buf0"}}}],"meta":{"stack":"line\n\t\"q\"","unicode":"\u00e9\ud83d\ude00"}}]},)"
      R"("numbers":[0,-1,1.25,1e+300,-1e-300,NaN,Infinity,-Infinity,9007199254740993],"e":[],"o":{}})";
  JsonValue v = parse_ok(text);
  const std::string written = v.to_json();
  JsonValue again = parse_ok(written);
  EXPECT_EQ(again.to_json(), written);
  EXPECT_EQ(*(*v.get_array("numbers"))[8].expect_int(), 9007199254740993);
  EXPECT_EQ(*(*again.get_array("numbers"))[3].expect_double(), 1e300);
}

TEST(JsonTest, Quote) {
  EXPECT_EQ(json_quote("abc"), "\"abc\"");
  EXPECT_EQ(json_quote("a\"b\\c\n\t\r\b\f"), R"("a\"b\\c\n\t\r\b\f")");
  EXPECT_EQ(json_quote(std::string_view("\x00\x1f\x7f", 3)), "\"\\u0000\\u001f\x7f\"");
  EXPECT_EQ(json_quote("\xC3\xA9"), "\"\xC3\xA9\"");
  std::string all;
  for (int c = 0; c < 128; ++c) all.push_back(static_cast<char>(c));
  all += "\xE2\x82\xAC\xF0\x9F\x98\x80";
  EXPECT_EQ(parse_ok(json_quote(all)).as_string(), all);
}

TEST(JsonTest, ErrorsNameLineAndColumn) {
  EXPECT_EQ(parse_error("{\n  \"a\": tru\n}"),
            "invalid JSON at line 2 column 8: expected a value, found 't'");
  EXPECT_EQ(parse_error("[1, 2"),
            "invalid JSON at line 1 column 6: expected ',' or ']', found end of input");
  EXPECT_EQ(parse_error(""),
            "invalid JSON at line 1 column 1: expected a value, found end of input");
  EXPECT_EQ(parse_error("{\"a\" 1}"), "invalid JSON at line 1 column 6: expected ':', found '1'");
  EXPECT_EQ(parse_error("[1]\n\n x"),
            "invalid JSON at line 3 column 2: expected end of input, found 'x'");
  EXPECT_EQ(parse_error("\x01"),
            "invalid JSON at line 1 column 1: expected a value, found byte 0x01");
}

TEST(JsonTest, RejectsNonJson) {
  for (const char* text : {"[1,]",      "{\"a\":1,}", "{,}",
                           "[,1]",      "01",         "-01",
                           "1.",        ".5",         "+1",
                           "1e",        "1e+",        "--1",
                           "-",         "'a'",        "{a: 1}",
                           "{1: 2}",    "[1 2]",      "// c\n1",
                           "/* c */ 1", "True",       "nul",
                           "[",         "{",          "]",
                           "}",         "\"",         "{\"a\"",
                           "{\"a\":",   "1 2",        "[1]]",
                           "0x10",      "1.5.5",      "\xEF\xBB\xBF{}"}) {
    parse_error(text);
  }
}

TEST(JsonTest, NestingLimit) {
  EXPECT_TRUE(parse_json(std::string(512, '[') + std::string(512, ']')).ok());
  EXPECT_NE(parse_error(std::string(513, '[') + std::string(513, ']')).find("nesting depth"),
            std::string::npos);
  // Deep hostile input fails cleanly instead of overflowing the stack.
  parse_error(std::string(1'000'000, '['));
  std::string objects;
  for (int i = 0; i < 100'000; ++i) objects += "{\"a\":";
  parse_error(objects);
}

TEST(JsonTest, EveryPrefixAndMutationFailsCleanly) {
  const std::string text =
      R"({"a": [1, -2.5e3, true, false, null, "s\u00e9\ud83d\ude00\n"], "b": {"c": {}, "d": []}, "e": NaN})";
  ASSERT_TRUE(parse_json(text).ok());
  for (size_t n = 0; n < text.size(); ++n) {
    EXPECT_FALSE(parse_json(text.substr(0, n)).ok()) << n;
  }
  std::mt19937 rng(7);
  for (int trial = 0; trial < 20000; ++trial) {
    std::string mutated = text;
    mutated[rng() % mutated.size()] = static_cast<char>(rng() % 256);
    Result<JsonValue> result = parse_json(mutated);  // must not crash; either outcome is fine
    if (!result.ok()) {
      EXPECT_EQ(result.status().code(), StatusCode::kDataLoss);
    }
  }
}

TEST(JsonTest, ParsesLargeDocument) {
  // About 2.5 MB shaped like an exported program; checks nothing is quadratic.
  std::string text = "{\"nodes\": [";
  for (int i = 0; i < 20000; ++i) {
    if (i > 0) text += ",";
    text += R"({"target": "aten.convolution.default", "inputs": [{"name": "input", "arg": )"
            R"({"as_tensor": {"name": "buf)" +
            std::to_string(i) +
            R"("}}}, {"name": "stride", "arg": {"as_ints": [1, 1]}}], )"
            R"("metadata": {"val": 1.5e-3}})";
  }
  text += "]}";
  JsonValue v = parse_ok(text);
  ASSERT_EQ((*v.get_array("nodes")).size(), 20000u);
}

}  // namespace
}  // namespace kiln
