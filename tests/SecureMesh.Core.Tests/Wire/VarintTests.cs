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
    }

    [Theory]
    [MemberData(nameof(Vectors))]
    public void Every_truncation_asks_for_more(ulong value, string hex)
    {
        var bytes = Convert.FromHexString(hex);
        _ = value;
        for (var length = 0; length < bytes.Length; length++)
        {
            Assert.False(Varint.TryRead(bytes.AsSpan(0, length), out _, out var consumed));
            Assert.Equal(0, consumed);
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
                Assert.True(Varint.TryRead(buffer[..written], out var read, out var consumed));
                Assert.Equal(value, read);
                Assert.Equal(written, consumed);
            }
        }
    }
}
