// 128-bit integers for overflow-free intermediates (a GCC/Clang extension).
#pragma once

namespace shield {

__extension__ using Int128 = __int128;
__extension__ using UInt128 = unsigned __int128;

}  // namespace shield
