// Table-driven tests: every case of a table has a `name`, a sentence in CamelCase, and each
// parameterised test is named after its case.
#pragma once

#include <gtest/gtest.h>

#include <string>

namespace shield::testing_support {

// INSTANTIATE_TEST_SUITE_P's name generator for a table whose cases have a `name`.
struct CaseName {
  template <typename Case>
  std::string operator()(const testing::TestParamInfo<Case>& info) const {
    return std::string(info.param.name);
  }
};

}  // namespace shield::testing_support
