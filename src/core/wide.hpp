// 128-bit integers for overflow-free intermediates (a GCC/Clang extension).
#pragma once

#include <type_traits>

namespace shield {

__extension__ using Int128 = __int128;
__extension__ using UInt128 = unsigned __int128;

// floor(a / b) for b > 0 (C++ division rounds toward zero), for int64_t or Int128.
template <typename T>
constexpr T FloorDiv(T a, std::type_identity_t<T> b) noexcept {
  const T q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

}  // namespace shield
