using System.Numerics;
using SecureMesh.Core.Identity;

namespace SecureMesh.Core.Tests.Identity;

public sealed class Base58Tests
{
    // The base58btc vectors of the IETF draft (draft-msporny-base58) and Bitcoin Core's base58_encode_decode.json.
    public static TheoryData<string, string> Vectors() => new()
    {
        { "", "" },
        { "61", "2g" },
        { "626262", "a3gV" },
        { "636363", "aPEr" },
        { "73696d706c792061206c6f6e6720737472696e67", "2cFupjhnEsSn59qHXstmK2ffpLv2" },
        { "00eb15231dfceb60925886b67d065299925915aeb172c06647", "1NS17iag9jJgTHD1VXjvLCEnZuQ3rJDE9L" },
        { "516b6fcd0f", "ABnLTmg" },
        { "bf4f89001e670274dd", "3SEo3LWLoPntC" },
        { "572e4794", "3EFU7m" },
        { "ecac89cad93923c02321", "EJDM8drfXA6uyA" },
        { "10c8511e", "Rt5zm" },
        { "00000000000000000000", "1111111111" },
        { "48656c6c6f20576f726c6421", "2NEpo7TZRRrLZSi2U" },
        { "0000287fb4cd", "11233QC4" },
    };

    [Theory]
    [MemberData(nameof(Vectors))]
    public void Encodes_and_decodes_the_published_vectors(string hex, string text)
    {
        var bytes = Convert.FromHexString(hex);
        Assert.Equal(text, Base58.Encode(bytes));
        if (text.Length > 0)
        {
            Assert.True(Base58.TryDecode(text, out var decoded));
            Assert.Equal(bytes, decoded);
        }
    }

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
