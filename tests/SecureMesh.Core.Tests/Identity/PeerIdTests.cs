using SecureMesh.Core.Identity;

namespace SecureMesh.Core.Tests.Identity;

public class PeerIdTests
{
    public static TheoryData<string> VectorSources() => [.. TestFixtures.PeerIdVectors.Select(v => v.Source)];

    [Theory]
    [MemberData(nameof(VectorSources))]
    public void FromPublicKey_matches_the_libp2p_js_implementation(string source)
    {
        var v = TestFixtures.Vector(source);
        var id = PeerId.FromPublicKey(Convert.FromHexString(v.PublicKeyHex));

        Assert.Equal(v.PeerId, id.Text);
        Assert.Equal(PeerId.TextLength, id.Text.Length);
        Assert.StartsWith("12D3KooW", id.Text, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(VectorSources))]
    public void Parse_round_trips_the_js_vectors(string source)
    {
        var v = TestFixtures.Vector(source);
        var id = PeerId.Parse(v.PeerId);

        Assert.Equal(v.PublicKeyHex, Convert.ToHexStringLower(id.PublicKey));
        Assert.Equal(v.PeerId, id.ToString());
        Assert.Equal(PeerId.FromPublicKey(id.PublicKey), id);
    }

    [Theory]
    [MemberData(nameof(VectorSources))]
    public void Seeds_give_the_same_public_key_as_js(string source)
    {
        var v = TestFixtures.Vector(source);
        if (v.SeedHex is null)
        {
            return;
        }
        using var identity = NodeIdentity.FromSeed(Convert.FromHexString(v.SeedHex));
        Assert.Equal(v.PublicKeyHex, Convert.ToHexStringLower(identity.PublicKey));
        Assert.Equal(v.PeerId, identity.PeerId.Text);
    }

    [Fact]
    public void The_vector_file_has_the_expected_entries()
    {
        Assert.True(TestFixtures.PeerIdVectors.Count >= 10);
        Assert.Contains(TestFixtures.PeerIdVectors, v => v.Source == "ssh-ed25519.pub");
        Assert.Contains(TestFixtures.PeerIdVectors, v => v.Source == "pkcs8-ed25519.pub.pem");
    }

    public static TheoryData<string?> Invalid() =>
    [
        null,
        "",
        "hello",
        "12D3KooWQK1wnefoLrcVHbbnf5tLzbopUd3K3bFAoJpA7YJgL5p",     // one character short
        "12D3KooWQK1wnefoLrcVHbbnf5tLzbopUd3K3bFAoJpA7YJgL5pVV",   // one character long
        "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N",           // RSA-style sha256 multihash
        "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5NQmYyQS",     // 52 characters, sha256 multihash prefix
        "bafzaajaiaejcay7c7ti3p5ufkvlcmbo3v4eycrxfvtd3tp3p2i3j4hcyxncifq", // CIDv1 libp2p-key, base32
        "12D3KooWQK1wnefoLrcVHbbnf5tLzbopUd3K3bFAoJpA7YJgL50V",    // '0' is not base58
        "12D3KooWQK1wnefoLrcVHbbnf5tLzbopUd3K3bFAoJpA7YJgLlpV",    // 'l' is not base58
        "12D3KooWQK1wnefoLrcVHbbnf5tLzbopUd3K3bFAoJpA7YJgL5p ",    // space
        "12D3KooWQK1wnefoLrcVHbbnf5tLzbopUd3K3bFAoJpA7YJgL5p\u00e9", // non-ASCII
        "12E3KooWQK1wnefoLrcVHbbnf5tLzbopUd3K3bFAoJpA7YJgL5pV",    // flipped character: wrong multihash prefix
        "12D3KpoWQK1wnefoLrcVHbbnf5tLzbopUd3K3bFAoJpA7YJgL5pV",    // flipped character: wrong protobuf header
        "11111111111111111111111111111111111111111111111111zz",
    ];

    [Theory]
    [MemberData(nameof(Invalid))]
    public void Parse_rejects_anything_but_an_Ed25519_identity_multihash(string? text)
    {
        Assert.False(PeerId.TryParse(text, out var id, out var error));
        Assert.Null(id);
        Assert.StartsWith("invalid Peer ID", error, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error);
        var e = Assert.Throws<SecureMeshException>(() => PeerId.Parse(text));
        Assert.Equal(SecureMeshErrorKind.InvalidInput, e.Kind);
    }

    [Fact]
    public void A_flipped_leading_character_fails_on_the_prefix_not_the_alphabet()
    {
        Assert.False(PeerId.TryParse("12E3KooWQK1wnefoLrcVHbbnf5tLzbopUd3K3bFAoJpA7YJgL5pV", out _, out var error));
        Assert.Contains("Ed25519", error, StringComparison.Ordinal);
    }
}

public class Base58AndFingerprintTests
{
    [Theory]
    [InlineData("", "")]
    [InlineData("00", "1")]
    [InlineData("0000", "11")]
    [InlineData("61", "2g")]
    [InlineData("626262", "a3gV")]
    [InlineData("636363", "aPEr")]
    [InlineData("73696d706c792061206c6f6e6720737472696e67", "2cFupjhnEsSn59qHXstmK2ffpLv2")]
    [InlineData("00eb15231dfceb60925886b67d065299925915aeb172c06647", "1NS17iag9jJgTHD1VXjvLCEnZuQ3rJDE9L")]
    [InlineData("516b6fcd0f", "ABnLTmg")]
    [InlineData("bf4f89001e670274dd", "3SEo3LWLoPntC")]
    [InlineData("572e4794", "3EFU7m")]
    [InlineData("ecac89cad93923c02321", "EJDM8drfXA6uyA")]
    [InlineData("10c8511e", "Rt5zm")]
    [InlineData("00000000000000000000", "1111111111")]
    public void Base58_matches_the_bitcoin_test_vectors(string hex, string text)
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
    public void Base58_round_trips_random_data()
    {
        var random = new Random(1234);
        for (var length = 0; length < 80; length++)
        {
            var data = new byte[length];
            random.NextBytes(data);
            if (length > 2)
            {
                data[0] = 0; // leading zeros are the usual trap
            }
            var text = Base58.Encode(data);
            if (length == 0)
            {
                Assert.Equal(string.Empty, text);
                continue;
            }
            Assert.True(Base58.TryDecode(text, out var back));
            Assert.Equal(data, back);
        }
    }

    [Theory]
    [InlineData("0OIl")]
    [InlineData("abc!")]
    [InlineData("")]
    public void Base58_rejects_characters_outside_the_alphabet(string text) =>
        Assert.False(Base58.TryDecode(text, out _));

    [Fact]
    public void Fingerprint_is_stable_and_readable()
    {
        var key = Convert.FromHexString(TestFixtures.Vector("rfc8032-test1").PublicKeyHex);
        var fingerprint = Fingerprint.Of(key);

        Assert.Equal(FingerprintOfRfc8032Test1, fingerprint);
        Assert.Equal(fingerprint, PeerId.FromPublicKey(key).Fingerprint);
        Assert.Matches("^[a-z2-7]{4}(-[a-z2-7]{4}){4}$", fingerprint);
        Assert.NotEqual(fingerprint, Fingerprint.Of(Convert.FromHexString(TestFixtures.Vector("seed-00").PublicKeyHex)));
    }

    private const string FingerprintOfRfc8032Test1 = "nosf-ddyn-lr7s-fhjq-5xqs"; // checked with Python hashlib + base64.b32encode
}
