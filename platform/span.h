// thaw/platform/span.h — a pointer and a length, like C++20's std::span.
//
//   void Print(thaw::Span<const float> values);
//   Print({1.0f, 2.0f});          // from a braced list (lives until the ';')
//   Print(std::vector<float>{});  // from any contiguous container
#ifndef THAW_PLATFORM_SPAN_H_
#define THAW_PLATFORM_SPAN_H_

#include <cstddef>
#include <initializer_list>
#include <type_traits>

namespace thaw {

template <class T>
class Span {
 public:
  constexpr Span() = default;
  constexpr Span(T* data, size_t size) : data_(data), size_(size) {}
  template <size_t N>
  constexpr Span(T (&array)[N]) : data_(array), size_(N) {}  // NOLINT
  // From a braced list; only for Span<const T>, since the list is const.
  // The list lives until the end of the full expression, so this is for
  // arguments: f({1, 2}), never `Span<const int> s = {1, 2};`.
#if defined(__GNUC__) && !defined(__clang__)  // a GCC warning clang does not know
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winit-list-lifetime"
#endif
  template <class U = T, class = std::enable_if_t<std::is_const<U>::value>>
  constexpr Span(std::initializer_list<std::remove_const_t<T>> list)  // NOLINT
      : data_(list.begin()), size_(list.size()) {}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
  // From std::vector, std::array and friends whose elements convert.
  template <class C,
            class = std::enable_if_t<
                std::is_convertible<decltype(std::declval<C&>().data()), T*>::value &&
                !std::is_same<std::decay_t<C>, Span>::value>>
  constexpr Span(C& container)  // NOLINT
      : data_(container.data()), size_(container.size()) {}
  // From a const (or temporary) container, for Span<const T>.
  template <class C,
            class = std::enable_if_t<
                std::is_const<T>::value &&
                std::is_convertible<decltype(std::declval<const C&>().data()), T*>::value &&
                !std::is_same<std::decay_t<C>, Span>::value>>
  constexpr Span(const C& container)  // NOLINT
      : data_(container.data()), size_(container.size()) {}

  constexpr T* data() const { return data_; }
  constexpr size_t size() const { return size_; }
  constexpr bool empty() const { return size_ == 0; }
  constexpr T& operator[](size_t i) const { return data_[i]; }
  constexpr T* begin() const { return data_; }
  constexpr T* end() const { return data_ + size_; }

 private:
  T* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace thaw

#endif  // THAW_PLATFORM_SPAN_H_
