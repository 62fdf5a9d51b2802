#pragma once
/// \file The version of the flowy headers; flowy::version() is the library's.
/// (Kept equal to meson.build's project version: the test 'tool' checks it.)

#define FLOWY_VERSION "0.1.0"
#define FLOWY_VERSION_MAJOR 0
#define FLOWY_VERSION_MINOR 1
#define FLOWY_VERSION_PATCH 0

namespace flowy {

/// The version of the library the program runs with, "MAJOR.MINOR.PATCH".
const char* version() noexcept;

}  // namespace flowy
