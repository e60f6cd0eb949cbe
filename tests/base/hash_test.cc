#include "base/hash.h"

#include <gtest/gtest.h>

#include <string>

namespace kiln {
namespace {

// Reference values of XXH64 from the algorithm's published test vectors.
TEST(Xxhash64, MatchesReferenceVectors) {
  EXPECT_EQ(xxhash64("", 0, 0), 0xEF46DB3751D8E999ull);
  EXPECT_EQ(xxhash64("a", 1, 0), 0xD24EC4F1A98C6E5Bull);
  EXPECT_EQ(xxhash64("abc", 3, 0), 0x44BC2CF5AD770999ull);
  const std::string long_text = "Nobody inspects the spammish repetition";
  EXPECT_EQ(xxhash64(long_text.data(), long_text.size(), 0), 0xFBCEA83C8A378BF1ull);
}

TEST(Xxhash64, SeedChangesTheHash) {
  EXPECT_NE(xxhash64("abc", 3, 0), xxhash64("abc", 3, 1));
}

TEST(Digest128, SplitsOfTheSameBytesDiffer) {
  EXPECT_NE(Digest128().add("ab").add("c").hex(), Digest128().add("a").add("bc").hex());
  EXPECT_EQ(Digest128().add("ab").add("c").hex(), Digest128().add("ab").add("c").hex());
  EXPECT_EQ(Digest128().add("x").hex().size(), 32u);
}

TEST(Digest128, EveryByteMatters) {
  std::string data(1000, 'q');
  const std::string base = Digest128().add(data).hex();
  for (size_t i : {0u, 31u, 32u, 500u, 999u}) {
    std::string changed = data;
    changed[i] = 'r';
    EXPECT_NE(Digest128().add(changed).hex(), base) << i;
  }
}

}  // namespace
}  // namespace kiln
