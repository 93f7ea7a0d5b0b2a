using SecureMesh.Core.Wire;

namespace SecureMesh.Core.Tests.Wire;

public class VarintTests
{
    // Vectors from the multiformats unsigned-varint spec and protobuf's encoding guide.
    public static TheoryData<ulong, string> Vectors => new()
    {
        { 0UL, "00" },
        { 1UL, "01" },
        { 127UL, "7f" },
        { 128UL, "8001" },
        { 255UL, "ff01" },
        { 300UL, "ac02" },
        { 16384UL, "808001" },
        { uint.MaxValue, "ffffffff0f" },
        { (1UL << 63) - 1, "ffffffffffffffff7f" },
    };

    // Only protobuf's 64-bit varint holds these: the multiformats one stops at 9 bytes (63 bits).
    public static TheoryData<ulong, string> Vectors64 => new()
    {
        { 1UL << 63, "80808080808080808001" },
        { ulong.MaxValue, "ffffffffffffffffff01" },
    };

    [Theory]
    [MemberData(nameof(Vectors))]
    public void Writes_and_reads_the_published_encodings(ulong value, string hex)
    {
        var expected = Convert.FromHexString(hex);
        Assert.Equal(expected.Length, Varint.Size(value));
        var buffer = new byte[Varint.MaxLength64 + 3];
        var written = Varint.Write(buffer, value);
        Assert.Equal(expected, buffer[..written]);

        buffer[written] = 0xAA; // trailing bytes are not consumed
        Assert.True(Varint.TryRead(buffer, out var read, out var consumed));
        Assert.Equal(value, read);
        Assert.Equal(expected.Length, consumed);
        Assert.True(Varint.TryRead64(buffer, out read, out consumed));
        Assert.Equal(value, read);
        Assert.Equal(expected.Length, consumed);
    }

    [Theory]
    [MemberData(nameof(Vectors64))]
    public void Values_over_63_bits_are_protobuf_only(ulong value, string hex)
    {
        var expected = Convert.FromHexString(hex);
        var buffer = new byte[Varint.MaxLength64];
        Assert.Equal(expected.Length, Varint.Write(buffer, value));
        Assert.Equal(expected, buffer);
        Assert.True(Varint.TryRead64(buffer, out var read, out var consumed));
        Assert.Equal((value, expected.Length), (read, consumed));

        // multiformats/unsigned-varint: "the maximum length of a varint is 9 bytes".
        var e = Assert.Throws<SecureMeshException>(() => Varint.TryRead(buffer, out _, out _));
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
        Assert.Contains("longer than 9 bytes", e.Message, StringComparison.Ordinal);
        Assert.Equal(VarintStatus.TooLong, Varint.Decode(buffer, Varint.MaxLength, out _, out _));
    }

    [Theory]
    [MemberData(nameof(Vectors))]
    [MemberData(nameof(Vectors64))]
    public void Every_truncation_asks_for_more(ulong value, string hex)
    {
        var bytes = Convert.FromHexString(hex);
        _ = value;
        for (var length = 0; length < bytes.Length; length++)
        {
            if (length < Varint.MaxLength)
            {
                Assert.False(Varint.TryRead(bytes.AsSpan(0, length), out _, out var consumed));
                Assert.Equal(0, consumed);
            }
            Assert.False(Varint.TryRead64(bytes.AsSpan(0, length), out _, out var consumed64));
            Assert.Equal(0, consumed64);
            Assert.Equal(VarintStatus.Truncated, Varint.Decode(bytes.AsSpan(0, length), Varint.MaxLength64, out var value64, out _));
            Assert.Equal(0UL, value64);
        }
    }

    [Theory]
    [InlineData("8000")]                   // 0 in two bytes
    [InlineData("ff00")]                   // 127 in two bytes
    [InlineData("80808000")]               // padded
    [InlineData("ffffffffffffffffff02")]   // 65 bits
    [InlineData("ffffffffffffffffff81")]   // eleventh byte announced
    [InlineData("ffffffffffffffffffff01")] // eleven bytes
    [InlineData("80808080808080808000")]   // ten bytes ending in a zero
    public void Overlong_or_overflowing_encodings_are_protocol_errors(string hex)
    {
        var e = Assert.Throws<SecureMeshException>(() => Varint.TryRead(Convert.FromHexString(hex), out _, out _));
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
        e = Assert.Throws<SecureMeshException>(() => Varint.TryRead64(Convert.FromHexString(hex), out _, out _));
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
    }

    // The non-throwing decoder (multiaddr, the wire codec) names each failure; value and length stay 0.
    [Theory]
    [InlineData("", 9, VarintStatus.Truncated)]
    [InlineData("ff", 9, VarintStatus.Truncated)]
    [InlineData("8480", 9, VarintStatus.Truncated)]
    [InlineData("8000", 9, VarintStatus.NotMinimal)]
    [InlineData("848000", 9, VarintStatus.NotMinimal)]
    [InlineData("ffffffffffffffff", 9, VarintStatus.Truncated)]
    [InlineData("ffffffffffffffff80", 9, VarintStatus.TooLong)] // a ninth byte that announces a tenth
    [InlineData("ffffffffffffffff8001", 9, VarintStatus.TooLong)]
    [InlineData("ffffffffffffffffff02", 10, VarintStatus.TooLong)]
    [InlineData("80808080808080808000", 10, VarintStatus.NotMinimal)]
    [InlineData("ffffffffffffffffff80", 10, VarintStatus.TooLong)]
    [InlineData("a503", 9, VarintStatus.Ok)]
    public void Decode_names_the_failure(string hex, int maxLength, VarintStatus expected)
    {
        var status = Varint.Decode(Convert.FromHexString(hex), maxLength, out var value, out var consumed);
        Assert.Equal(expected, status);
        if (expected == VarintStatus.Ok)
        {
            Assert.Equal((421UL, 2), (value, consumed));
        }
        else
        {
            Assert.Equal((0UL, 0), (value, consumed));
            Assert.NotEqual(Varint.Describe(VarintStatus.Ok, maxLength), Varint.Describe(status, maxLength));
        }
    }

    [Fact]
    public void Only_the_two_spec_limits_are_accepted()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Varint.Decode([0x01], 5, out _, out _));
        Assert.Throws<ArgumentOutOfRangeException>(() => Varint.Decode([0x01], 11, out _, out _));
    }

    [Fact]
    public void Write_refuses_a_short_destination()
    {
        Assert.Throws<ArgumentException>(() => Varint.Write(new byte[1], 128));
        Assert.Equal(1, Varint.Write(new byte[1], 127));
    }

    [Fact]
    public void Round_trips_every_power_of_two_neighbourhood()
    {
        Span<byte> buffer = stackalloc byte[Varint.MaxLength64];
        for (var bit = 0; bit < 64; bit++)
        {
            foreach (var value in new[] { (1UL << bit) - 1, 1UL << bit, (1UL << bit) + 1 })
            {
                var written = Varint.Write(buffer, value);
                Assert.Equal(written, Varint.Size(value));
                Assert.True(Varint.TryRead64(buffer[..written], out var read, out var consumed));
                Assert.Equal(value, read);
                Assert.Equal(written, consumed);
            }
        }
    }
}
