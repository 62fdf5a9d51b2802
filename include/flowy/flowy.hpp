#pragma once
/// \file The one include a flowy user needs.
///
/// A workflow is a class whose members are activity proxies; calling a proxy returns a
/// Result at once, and passing results into other calls builds the task graph. The
/// engine infers the concurrency from it:
///
///     struct ExampleWorkflow {
///         flowy::Activity<int(int)> square{"square"};
///         flowy::Activity<int(int, int)> sum{"sum"};
///         flowy::Result<int> operator()(int a, int b) { return sum(square(a), square(b)); }
///     };

#include <flowy/activity.hpp>
#include <flowy/error.hpp>
#include <flowy/local_workflow.hpp>
#include <flowy/operations.hpp>
#include <flowy/options.hpp>
#include <flowy/result.hpp>
#include <flowy/trace.hpp>
#include <flowy/version.hpp>
#include <flowy/workflow.hpp>
