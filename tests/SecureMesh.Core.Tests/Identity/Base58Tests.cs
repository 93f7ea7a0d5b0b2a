using System.Numerics;
using SecureMesh.Core.Identity;

namespace SecureMesh.Core.Tests.Identity;

public sealed class Base58Tests
{
    // The published vectors are in PeerIdTests (Base58_matches_the_bitcoin_test_vectors); these check the decoder
    // against the textbook big-number decoding it replaced, and its refusals.
    [Fact]
    public void Decoding_agrees_with_a_big_integer_reference_on_random_input()
    {
        var random = new Random(1658);
        for (var i = 0; i < 2000; i++)
        {
            var bytes = new byte[random.Next(0, 70)];
            random.NextBytes(bytes);
            // Leading zero bytes are the '1' prefix; make them common.
            for (var z = random.Next(0, 4); z > 0 && z <= bytes.Length; z--)
            {
                bytes[z - 1] = 0;
            }
            var text = Base58.Encode(bytes);
            if (text.Length == 0)
            {
                continue;
            }
            Assert.True(Base58.TryDecode(text, out var decoded));
            Assert.Equal(bytes, decoded);
            Assert.Equal(Reference(text), decoded);
        }
    }

    [Theory]
    [InlineData("0")]
    [InlineData("O")]
    [InlineData("I")]
    [InlineData("l")]
    [InlineData("abc+")]
    [InlineData("é")]
    public void Characters_outside_the_alphabet_are_refused(string text) => Assert.False(Base58.TryDecode(text, out _));

    [Fact]
    public void Empty_and_over_long_input_is_refused()
    {
        Assert.False(Base58.TryDecode("", out _));
        Assert.False(Base58.TryDecode(new string('z', Base58.MaxEncodedLength + 1), out _));
        Assert.True(Base58.TryDecode(new string('z', Base58.MaxEncodedLength), out var longest));
        Assert.Equal(longest, Reference(new string('z', Base58.MaxEncodedLength)));
    }

    /// <summary>The textbook decoding: the digits as one big number, then its bytes after one zero byte per leading '1'.</summary>
    private static byte[] Reference(string text)
    {
        var zeros = text.TakeWhile(c => c == '1').Count();
        var value = BigInteger.Zero;
        foreach (var c in text[zeros..])
        {
            value = (value * 58) + "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz".IndexOf(c, StringComparison.Ordinal);
        }
        var body = value.IsZero ? [] : value.ToByteArray(isUnsigned: true, isBigEndian: true);
        return [.. new byte[zeros], .. body];
    }
}
