//! The one canonical binary codec for everything on chain.
//!
//! This module is the only place that names `commonware-codec`: the rest of the project uses
//! [`Canonical`], [`encode`] and [`decode`]. Every on-chain type decodes with `Cfg = ()` because
//! its size limits are part of its type ([`BoundedVec`], [`BoundedString`]), so a value that can
//! be constructed can always be encoded and decoded again, and untrusted bytes can never make a
//! decoder allocate more than the declared bound.
//!
//! Layout rules (pinned by the conformance tests in `tests/conformance.rs`):
//! - fixed-width integers are big-endian; lengths are unsigned LEB128 varints;
//! - structs are their fields in declaration order, with no padding or tags;
//! - enums are a one-byte tag (explicit in the source, never derived from the order) followed by
//!   the variant's fields;
//! - `Option<T>` is a `0`/`1` byte then `T`.

use bytes::BufMut;
pub use commonware_codec::Error as CodecError;
use commonware_codec::{Buf, EncodeSize, RangeCfg, Read, ReadExt, Write};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::ops::Deref;

/// A value with one canonical binary encoding, decodable from untrusted bytes without a config.
pub trait Canonical: Write + EncodeSize + Read<Cfg = ()> {}
impl<T: Write + EncodeSize + Read<Cfg = ()>> Canonical for T {}

/// Encodes `value` canonically.
pub fn encode<T: Write + EncodeSize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.encode_size());
    value.write(&mut out);
    out
}

/// Decodes a whole buffer; trailing bytes are an error.
///
/// The decoders reject non-minimal varints, unknown enum tags and booleans other than 0 and 1,
/// so a successful decode re-encodes to exactly `bytes`: hashes over encodings are unambiguous.
pub fn decode<T: Canonical>(bytes: &[u8]) -> Result<T, CodecError> {
    let mut cursor = commonware_codec::Copying(bytes);
    let value = T::read_cfg(&mut cursor, &())?;
    if !cursor.0.is_empty() {
        return Err(CodecError::ExtraData(cursor.0.len()));
    }
    Ok(value)
}

/// Reads one value from a cursor (used by hand-written `Read` impls).
pub fn read<T: Read<Cfg = ()>>(buf: &mut impl Buf) -> Result<T, CodecError> {
    T::read(buf)
}

/// A vector holding at most `MAX` items, enforced on construction and on decode.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BoundedVec<T, const MAX: usize>(Vec<T>);

impl<T, const MAX: usize> Default for BoundedVec<T, MAX> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

/// Returned when a value would exceed its bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{len} items exceed the limit of {max}")]
pub struct TooLong {
    /// How many items were offered.
    pub len: usize,
    /// The bound.
    pub max: usize,
}

impl<T, const MAX: usize> BoundedVec<T, MAX> {
    /// The bound.
    pub const MAX: usize = MAX;

    /// An empty vector.
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    /// Wraps `items` if there are at most `MAX` of them.
    pub fn try_new(items: Vec<T>) -> Result<Self, TooLong> {
        if items.len() > MAX {
            return Err(TooLong {
                len: items.len(),
                max: MAX,
            });
        }
        Ok(Self(items))
    }

    /// Appends an item if the bound allows it.
    pub fn try_push(&mut self, item: T) -> Result<(), TooLong> {
        if self.0.len() >= MAX {
            return Err(TooLong {
                len: self.0.len().saturating_add(1),
                max: MAX,
            });
        }
        self.0.push(item);
        Ok(())
    }

    /// Mutable access to the items (the length cannot grow through this).
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.0
    }

    /// Removes and returns the items matching `keep == false`.
    pub fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
        self.0.retain(keep);
    }

    /// The inner vector.
    pub fn into_inner(self) -> Vec<T> {
        self.0
    }
}

impl<T, const MAX: usize> Deref for BoundedVec<T, MAX> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T, const MAX: usize> TryFrom<Vec<T>> for BoundedVec<T, MAX> {
    type Error = TooLong;
    fn try_from(items: Vec<T>) -> Result<Self, TooLong> {
        Self::try_new(items)
    }
}

impl<'a, T, const MAX: usize> IntoIterator for &'a BoundedVec<T, MAX> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<T: fmt::Debug, const MAX: usize> fmt::Debug for BoundedVec<T, MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<T: Write, const MAX: usize> Write for BoundedVec<T, MAX> {
    fn write(&self, buf: &mut impl BufMut) {
        self.0.write(buf);
    }
}

impl<T: EncodeSize, const MAX: usize> EncodeSize for BoundedVec<T, MAX> {
    fn encode_size(&self) -> usize {
        self.0.encode_size()
    }
}

impl<T: Read<Cfg = ()>, const MAX: usize> Read for BoundedVec<T, MAX> {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let range: RangeCfg<usize> = (0..=MAX).into();
        Ok(Self(Vec::<T>::read_cfg(buf, &(range, ()))?))
    }
}

impl<T: Serialize, const MAX: usize> Serialize for BoundedVec<T, MAX> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>, const MAX: usize> Deserialize<'de> for BoundedVec<T, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let items = Vec::<T>::deserialize(deserializer)?;
        Self::try_new(items).map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "arbitrary")]
impl<'a, T: arbitrary::Arbitrary<'a>, const MAX: usize> arbitrary::Arbitrary<'a>
    for BoundedVec<T, MAX>
{
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let len = u.int_in_range(0..=MAX.min(8))?;
        let mut items = Vec::with_capacity(len);
        for _ in 0..len {
            items.push(T::arbitrary(u)?);
        }
        Ok(Self(items))
    }
}

/// Byte strings on chain: opaque, bounded.
pub type BoundedBytes<const MAX: usize> = BoundedVec<u8, MAX>;

/// UTF-8 text of at most `MAX` bytes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct BoundedString<const MAX: usize>(String);

impl<const MAX: usize> BoundedString<MAX> {
    /// The bound, in bytes.
    pub const MAX: usize = MAX;

    /// Wraps `text` if it is at most `MAX` bytes long.
    pub fn try_new(text: impl Into<String>) -> Result<Self, TooLong> {
        let text = text.into();
        if text.len() > MAX {
            return Err(TooLong {
                len: text.len(),
                max: MAX,
            });
        }
        Ok(Self(text))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<const MAX: usize> Deref for BoundedString<MAX> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<const MAX: usize> fmt::Debug for BoundedString<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<const MAX: usize> fmt::Display for BoundedString<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<const MAX: usize> TryFrom<&str> for BoundedString<MAX> {
    type Error = TooLong;
    fn try_from(text: &str) -> Result<Self, TooLong> {
        Self::try_new(text)
    }
}

impl<const MAX: usize> Write for BoundedString<MAX> {
    fn write(&self, buf: &mut impl BufMut) {
        self.0.as_bytes().write(buf);
    }
}

impl<const MAX: usize> EncodeSize for BoundedString<MAX> {
    fn encode_size(&self) -> usize {
        self.0.as_bytes().encode_size()
    }
}

impl<const MAX: usize> Read for BoundedString<MAX> {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let range: RangeCfg<usize> = (0..=MAX).into();
        let bytes = Vec::<u8>::read_cfg(buf, &(range, ()))?;
        String::from_utf8(bytes)
            .map(Self)
            .map_err(|_| CodecError::Invalid("BoundedString", "not UTF-8"))
    }
}

impl<const MAX: usize> Serialize for BoundedString<MAX> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for BoundedString<MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::try_new(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "arbitrary")]
impl<'a, const MAX: usize> arbitrary::Arbitrary<'a> for BoundedString<MAX> {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let mut text = String::arbitrary(u)?;
        while text.len() > MAX {
            text.pop();
        }
        Ok(Self(text))
    }
}

/// Implements the canonical codec for a struct from its field list (in declaration order).
///
/// ```ignore
/// codec_struct!(Lease { worker, app, price });
/// ```
#[macro_export]
macro_rules! codec_struct {
    ($name:ident { $($field:ident),* $(,)? }) => {
        impl $crate::codec::__private::Write for $name {
            fn write(&self, buf: &mut impl $crate::codec::__private::BufMut) {
                $( $crate::codec::__private::Write::write(&self.$field, buf); )*
            }
        }
        impl $crate::codec::__private::EncodeSize for $name {
            fn encode_size(&self) -> usize {
                0usize $( .saturating_add($crate::codec::__private::EncodeSize::encode_size(&self.$field)) )*
            }
        }
        impl $crate::codec::__private::Read for $name {
            type Cfg = ();
            fn read_cfg(
                buf: &mut impl $crate::codec::__private::Buf,
                _: &(),
            ) -> Result<Self, $crate::codec::CodecError> {
                Ok(Self { $( $field: $crate::codec::read(buf)?, )* })
            }
        }
    };
}

/// Implements the canonical codec for an enum whose variants are unit, struct-like, or hold one
/// value, with an explicit tag per variant so reordering the source never changes the format.
///
/// ```ignore
/// codec_enum!(Status { 0 => Pending, 1 => Running { worker, since }, 2 => Other(inner) });
/// ```
#[macro_export]
macro_rules! codec_enum {
    ($name:ident { $($tag:literal => $variant:ident $({ $($field:ident),* $(,)? })? $(($inner:ident))? ),* $(,)? }) => {
        impl $crate::codec::__private::Write for $name {
            fn write(&self, buf: &mut impl $crate::codec::__private::BufMut) {
                match self {
                    $( $name::$variant $({ $($field),* })? $(($inner))? => {
                        $crate::codec::__private::Write::write(&($tag as u8), buf);
                        $($( $crate::codec::__private::Write::write($field, buf); )*)?
                        $( $crate::codec::__private::Write::write($inner, buf); )?
                    } )*
                }
            }
        }
        impl $crate::codec::__private::EncodeSize for $name {
            fn encode_size(&self) -> usize {
                match self {
                    $( $name::$variant $({ $($field),* })? $(($inner))? => {
                        1usize
                        $($( .saturating_add($crate::codec::__private::EncodeSize::encode_size($field)) )*)?
                        $( .saturating_add($crate::codec::__private::EncodeSize::encode_size($inner)) )?
                    } )*
                }
            }
        }
        impl $crate::codec::__private::Read for $name {
            type Cfg = ();
            fn read_cfg(
                buf: &mut impl $crate::codec::__private::Buf,
                _: &(),
            ) -> Result<Self, $crate::codec::CodecError> {
                let tag: u8 = $crate::codec::read(buf)?;
                match tag {
                    $( $tag => Ok($name::$variant
                        $({ $($field: $crate::codec::read(buf)?),* })?
                        $(({ let _ = stringify!($inner); $crate::codec::read(buf)? }))?
                    ), )*
                    other => Err($crate::codec::CodecError::InvalidEnum(other)),
                }
            }
        }
    };
}

/// Implements the canonical codec for a one-field tuple struct (a newtype).
#[macro_export]
macro_rules! codec_newtype {
    ($name:ident) => {
        impl $crate::codec::__private::Write for $name {
            fn write(&self, buf: &mut impl $crate::codec::__private::BufMut) {
                $crate::codec::__private::Write::write(&self.0, buf);
            }
        }
        impl $crate::codec::__private::EncodeSize for $name {
            fn encode_size(&self) -> usize {
                $crate::codec::__private::EncodeSize::encode_size(&self.0)
            }
        }
        impl $crate::codec::__private::Read for $name {
            type Cfg = ();
            fn read_cfg(
                buf: &mut impl $crate::codec::__private::Buf,
                _: &(),
            ) -> Result<Self, $crate::codec::CodecError> {
                Ok(Self($crate::codec::read(buf)?))
            }
        }
    };
}

#[doc(hidden)]
pub mod __private {
    pub use bytes::BufMut;
    pub use commonware_codec::{Buf, EncodeSize, Read, Write};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_vec_rejects_oversized_input_on_decode() {
        let long: Vec<u8> = vec![7; 5];
        let bytes = encode(&long);
        assert!(decode::<BoundedVec<u8, 4>>(&bytes).is_err());
        assert_eq!(
            decode::<BoundedVec<u8, 5>>(&bytes).unwrap().into_inner(),
            long
        );
    }

    #[test]
    fn bounded_string_rejects_invalid_utf8_and_length() {
        let bytes = encode(&vec![0xffu8, 0xfe]);
        assert!(decode::<BoundedString<8>>(&bytes).is_err());
        assert!(BoundedString::<3>::try_new("abcd").is_err());
        let s = BoundedString::<8>::try_new("héllo").unwrap();
        assert_eq!(decode::<BoundedString<8>>(&encode(&s)).unwrap(), s);
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut bytes = encode(&5u64);
        bytes.push(0);
        assert!(matches!(
            decode::<u64>(&bytes),
            Err(CodecError::ExtraData(1))
        ));
    }

    #[test]
    fn a_huge_declared_length_does_not_allocate_or_panic() {
        // varint length u32::MAX followed by nothing
        let bytes = [0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(decode::<BoundedVec<u8, 16>>(&bytes).is_err());
    }
}
