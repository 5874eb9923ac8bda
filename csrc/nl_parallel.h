// Worker threads of the CPU neighbor list (internal header).
//
// Nothing a worker throws may reach std::terminate (that would end the host
// process, e.g. a LAMMPS run): every exception is caught in the thread and
// handed back to the calling thread, which rethrows it after all workers have
// joined, so the C API returns it as an error. A thread that cannot be started
// (std::system_error: the process's thread or memory limit) is left out; the
// others do its share, because workers take their work from a shared queue.
#ifndef SYMGNN_NL_PARALLEL_H
#define SYMGNN_NL_PARALLEL_H

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace symgnn_nl {

namespace testing {
// Faults the C++ tests inject into the next calls (0: none).
enum Fault : int {
  kNoFault = 0,
  kThrowInWorker = 1, // the last worker throws a std::runtime_error
  kThrowNonStd = 2,   // the last worker throws an int
  kNoThreads = 3,     // starting a thread fails with std::system_error
};
extern std::atomic<int> fault;
} // namespace testing

class Workers {
public:
  explicit Workers(int n_threads) : n_(std::max(1, n_threads)) {}
  int size() const { return n_; }
  // true once a worker has failed: the others stop taking work
  bool stopping() const { return stop_.load(std::memory_order_relaxed); }

  // Runs body(tid) for tid = 0 .. size() - 1 (tid 0 on the calling thread),
  // then rethrows the first exception (lowest tid) a body threw.
  template <typename F> void run(F &&body) {
    const int fault = testing::fault.load(std::memory_order_relaxed);
    std::vector<std::exception_ptr> errors(static_cast<size_t>(n_));
    auto guarded = [&](int tid) noexcept {
      try {
        if (tid == n_ - 1 && tid > 0 && fault == testing::kThrowInWorker)
          throw std::runtime_error("injected fault in worker " + std::to_string(tid));
        if (tid == n_ - 1 && tid > 0 && fault == testing::kThrowNonStd)
          throw tid;
        body(tid);
      } catch (...) {
        errors[static_cast<size_t>(tid)] = std::current_exception();
        stop_.store(true);
      }
    };
    std::vector<std::thread> threads;
    try {
      threads.reserve(static_cast<size_t>(n_ - 1));
      for (int t = 1; t < n_; ++t) {
        if (fault == testing::kNoThreads)
          throw std::system_error(EAGAIN, std::generic_category(), "injected: thread start");
        threads.emplace_back([&guarded, t] { guarded(t); });
      }
    } catch (...) {
      // run with the threads that did start
    }
    guarded(0);
    for (std::thread &th : threads)
      th.join();
    for (const std::exception_ptr &e : errors)
      if (e)
        std::rethrow_exception(e);
  }

private:
  int n_;
  std::atomic<bool> stop_{false};
};

// Chunks of bins handed out to the workers as they ask; the result does not
// depend on who does which.
class BinQueue {
public:
  BinQueue(int64_t n_bins, int64_t chunk) : n_bins_(n_bins), chunk_(chunk) {}
  // calls fn(b) for every bin not yet taken, until none is left or a worker failed
  template <typename F> void drain(const Workers &workers, F &&fn) {
    while (!workers.stopping()) {
      const int64_t b0 = next_.fetch_add(chunk_);
      if (b0 >= n_bins_)
        break;
      const int64_t b1 = std::min(n_bins_, b0 + chunk_);
      for (int64_t b = b0; b < b1; ++b)
        fn(b);
    }
  }

private:
  int64_t n_bins_, chunk_;
  std::atomic<int64_t> next_{0};
};

} // namespace symgnn_nl

#endif
