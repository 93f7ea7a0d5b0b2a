using SecureMesh.Core.Content;
using SecureMesh.Core.Wire;
using static SecureMesh.Core.Tests.Wire.WireSamples;

namespace SecureMesh.Core.Tests.Wire;

public class WireHostileDecodeTests
{
    private static SecureMeshException Rejected(byte[] bytes, string? reason = null)
    {
        var e = Assert.Throws<SecureMeshException>(() => WireCodec.Decode(bytes.AsSpan()));
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
        Assert.DoesNotContain("decoder fault", e.Message, StringComparison.Ordinal);
        if (reason is not null)
        {
            Assert.Contains(reason, e.Message, StringComparison.Ordinal);
        }
        var m = Assert.Throws<SecureMeshException>(() => WireCodec.Decode(bytes.AsMemory()));
        Assert.Equal(e.Message, m.Message);
        return e;
    }

    /// <summary>Unsigned LEB128.</summary>
    private static byte[] V(ulong value)
    {
        var bytes = new List<byte>();
        while (value >= 0x80)
        {
            bytes.Add((byte)(value | 0x80));
            value >>= 7;
        }
        bytes.Add((byte)value);
        return [.. bytes];
    }

    private static readonly byte[] Cid = new byte[32];

    [Theory]
    [MemberData(nameof(WireSamples.Indices), MemberType = typeof(WireSamples))]
    public void Truncation_at_every_offset_is_a_protocol_error(int index)
    {
        var encoded = WireCodec.Encode(Get(index));
        for (var length = 0; length < encoded.Length; length++)
        {
            Rejected(encoded[..length]);
        }
    }

    [Theory]
    [MemberData(nameof(WireSamples.Indices), MemberType = typeof(WireSamples))]
    public void Trailing_bytes_are_a_protocol_error(int index) =>
        Rejected([.. WireCodec.Encode(Get(index)), 0], "unexpected bytes");

    [Theory]
    [InlineData(0x00)]
    [InlineData(0x0D)]
    [InlineData(0x7F)]
    [InlineData(0xFF)]
    public void Unknown_type_is_named_in_the_error(byte type) =>
        Rejected([type, 0], $"unknown message type 0x{type:x2}");

    [Fact]
    public void Empty_input_is_truncated() => Rejected([], "truncated");

    [Fact]
    public void Oversized_lengths_are_refused_before_allocation()
    {
        // chunk data claiming 2^31 bytes, 2^32, 2^63 and 2^64-1
        foreach (var length in new ulong[] { 1UL << 31, 1UL << 32, 1UL << 63, ulong.MaxValue, (ulong)(16 * 1024 * 1024) + 1 })
        {
            Rejected([0x09, 1, .. V(0), .. V(length), 1, 2, 3], "exceeds the cap");
        }
        // within the cap but more than is left
        Rejected([0x09, 1, .. V(0), .. V(16 * 1024 * 1024), 1, 2, 3], "truncated");
        Rejected([0x05, 1, .. V(int.MaxValue)], "exceeds the cap");
        Rejected([0x02, 1, .. V(257), .. new byte[257], 1], "exceeds the cap");
        Rejected([0x0A, 1, 3, .. V(513), .. new byte[513]], "exceeds the cap");
        Rejected([0x01, 1, 1, 1, .. V(65), .. new byte[65], .. V(65536)], "exceeds the cap");
    }

    [Fact]
    public void Huge_counts_are_refused_before_allocation()
    {
        Rejected([0x03, 1, .. V(uint.MaxValue)], "exceeds the cap");
        Rejected([0x03, 1, .. V(1001)], "exceeds the cap");
        Rejected([0x03, 1, .. V(1000)], "truncated"); // allowed count, but the bytes for it are not there
        Rejected([0x01, 1, 1, .. V(33)], "exceeds the cap");
        Rejected([0x01, 1, 1, .. V(32)], "truncated");
        Rejected([0x09, 1, 0, 0, .. V(65)], "exceeds the cap");
        Rejected([0x09, 1, 0, 0, .. V(64), .. new byte[32]], "truncated");
        Rejected([0x07, 1, 0, .. V(1UL << 40), 0], "exceeds");
        // The Have count is capped at the most chunks a file may have (issue 14: 2^30 let one message size 128 MiB of bits).
        Rejected([0x07, 1, 0, .. V((ulong)ChunkLayout.MaxChunkCount + 1), 0], "exceeds");
        Rejected([0x07, 1, 0, .. V(1UL << 30), .. V(1 << 27)], "exceeds");
        Rejected([0x07, 1, 0, .. V((ulong)ChunkLayout.MaxChunkCount), .. V((ulong)ChunkLayout.MaxChunkCount / 8)], "truncated");
    }

    [Fact]
    public void Malformed_varints_are_refused()
    {
        Rejected([0x0B, 0x80, 0x00], "not minimally encoded");
        Rejected([0x0B, 0xFF, 0xFF, 0xFF, 0xFF, 0x10], "exceeds 32 bits");
        Rejected([0x0B, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02], "overflows 64 bits");
        Rejected([0x0B, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x81, 0x00], "overflows 64 bits");
        Rejected([0x08, 1, .. Cid, .. V(ulong.MaxValue)], "too large");
        Rejected([0x03, 1, 1, .. Cid, 1, (byte)'a', .. V(1UL << 63)], "too large");
    }

    [Fact]
    public void Field_values_out_of_range_are_refused()
    {
        Rejected([0x02, 1, 0, .. V(0)], "search limit");
        Rejected([0x02, 1, 0, .. V(1001)], "search limit");
        Rejected([0x01, 1, 1, 0, .. V(1000)], "max message size");
        Rejected([0x01, 1, 1, 0, .. V(uint.MaxValue)], "max message size");
        Rejected([0x0A, 1, 0, 0], "unknown error code");
        Rejected([0x0A, 1, 99, 0], "unknown error code");
        Rejected([0x0A, 1, .. V(256 + 3), 0], "unknown error code");
        Rejected([0x07, 1, 2, 0], "unknown have kind");
        Rejected([0x07, 1, 0, 3, 1, 0x10], "bits set past the last chunk");
        Rejected([0x07, 1, 0, 9, 1, 0x80], "does not match");
        Rejected([0x07, 1, 0, 9, 3, 0x80, 0, 0], "exceeds the cap");
    }

    [Fact]
    public void Invalid_utf8_is_refused()
    {
        Rejected([0x02, 1, 2, 0xC3, 0x28, 1], "UTF-8");
        Rejected([0x0A, 1, 3, 1, 0xFF], "UTF-8");
        Rejected([0x03, 1, 1, .. Cid, 3, 0xED, 0xA0, 0x80, 0], "UTF-8"); // encoded surrogate
    }

    [Fact]
    public void Messages_over_the_size_limit_are_refused_unread()
    {
        var big = new byte[WireLimits.DefaultMaxMessageSize + 1];
        big[0] = 0x09;
        Rejected(big, "exceeds the limit");
        var e = Assert.Throws<SecureMeshException>(() => WireCodec.Decode(WireCodec.Encode(new CancelRequest(1)).AsSpan(), maxMessageSize: 1));
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
    }

    [Fact]
    public void Random_garbage_raises_only_protocol_errors()
    {
        var random = new Random(20261125);
        for (var i = 0; i < 20_000; i++)
        {
            var garbage = new byte[random.Next(0, 200)];
            random.NextBytes(garbage);
            if (garbage.Length > 0)
            {
                // Bias towards known types so the fuzz reaches the bodies.
                garbage[0] = (byte)random.Next(0, 13);
            }
            DecodeOrProtocolError(garbage, i);
        }
    }

    [Fact]
    public void Mutated_valid_messages_raise_only_protocol_errors()
    {
        var random = new Random(6);
        var samples = WireSamples.All().Select(WireCodec.Encode).ToArray();
        for (var i = 0; i < 20_000; i++)
        {
            var bytes = (byte[])samples[i % samples.Length].Clone();
            var mutations = random.Next(1, 4);
            for (var k = 0; k < mutations && bytes.Length > 0; k++)
            {
                switch (random.Next(3))
                {
                    case 0:
                        bytes[random.Next(bytes.Length)] ^= (byte)(1 << random.Next(8));
                        break;
                    case 1:
                        bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
                        break;
                    default:
                        bytes = bytes[..random.Next(bytes.Length)];
                        break;
                }
            }
            DecodeOrProtocolError(bytes, i);
        }
    }

    private static void DecodeOrProtocolError(byte[] bytes, int iteration)
    {
        foreach (var useMemory in new[] { false, true })
        {
            try
            {
                var message = useMemory ? WireCodec.Decode(bytes.AsMemory()) : WireCodec.Decode(bytes.AsSpan());
                // Whatever decodes must re-encode to the same bytes: there is one encoding per message.
                Assert.Equal(bytes, WireCodec.Encode(message));
            }
            catch (SecureMeshException e)
            {
                Assert.True(e.Kind == SecureMeshErrorKind.Protocol, $"iteration {iteration}: {e.Kind} {e.Message}");
                Assert.True(!e.Message.Contains("decoder fault", StringComparison.Ordinal), $"iteration {iteration}: {e.Message}");
            }
        }
    }
}
