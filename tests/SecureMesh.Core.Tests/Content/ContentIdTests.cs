using SecureMesh.Core.Content;

namespace SecureMesh.Core.Tests.Content;

public class ContentIdTests
{
    [Fact]
    public void Format_and_parse_round_trip()
    {
        var random = new Random(42);
        for (var i = 0; i < 200; i++)
        {
            var hash = new byte[32];
            random.NextBytes(hash);
            var id = ContentId.FromHash(hash);
            Assert.StartsWith("b3:", id.Text, StringComparison.Ordinal);
            Assert.Equal(ContentId.TextLength, id.Text.Length);
            Assert.Matches("^b3:[a-z2-7]{52}$", id.Text);
            var parsed = ContentId.Parse(id.Text);
            Assert.Equal(id, parsed);
            Assert.True(parsed == id);
            Assert.Equal(id.GetHashCode(), parsed.GetHashCode());
            Assert.True(parsed.Hash.SequenceEqual(hash));
            Assert.True(ContentId.IsValid(id.Text));
        }
    }

    [Fact]
    public void Known_encoding_matches_rfc4648_base32()
    {
        // RFC 4648 test vector "foobar" -> MZXW6YTBOI (lowercased), checked via the first bytes of a root.
        var hash = new byte[32];
        "foobar"u8.CopyTo(hash);
        Assert.StartsWith("b3:mzxw6ytboi", ContentId.FromHash(hash).Text, StringComparison.Ordinal);
        Assert.Equal("b3:" + new string('a', 52), ContentId.FromHash(new byte[32]).Text);
    }

    public static TheoryData<string?, string> Garbage => new()
    {
        { null, "empty" },
        { "", "empty" },
        { "b3:", "expected 55" },
        { "sha256:" + new string('a', 52), "must start with 'b3:'" },
        { "B3:" + new string('a', 52), "must start with 'b3:'" },
        { "b3:" + new string('a', 51), "expected 55" },
        { "b3:" + new string('a', 53), "expected 55" },
        { "b3:" + new string('A', 52), "not lowercase base32" },
        { "b3:" + new string('a', 51) + "1", "not lowercase base32" },
        { "b3:" + new string('a', 51) + "8", "not lowercase base32" },
        { "b3:" + new string('a', 51) + "=", "not lowercase base32" },
        { "b3:" + new string('a', 50) + "\n\u0007", "not lowercase base32" },
        { "b3:" + new string('a', 51) + "b", "non-zero trailing bits" },
        { " b3:" + new string('a', 51), "must start with 'b3:'" },
    };

    [Theory]
    [MemberData(nameof(Garbage))]
    public void Parse_rejects_garbage_with_a_clear_reason(string? text, string reason)
    {
        Assert.False(ContentId.TryParse(text, out var id, out var error));
        Assert.Null(id);
        Assert.Contains(reason, error, StringComparison.Ordinal);
        Assert.False(ContentId.IsValid(text));
        var e = Assert.Throws<SecureMeshException>(() => ContentId.Parse(text));
        Assert.Equal(SecureMeshErrorKind.InvalidInput, e.Kind);
        Assert.DoesNotContain("\n", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Error_message_does_not_echo_huge_input()
    {
        var e = Assert.Throws<SecureMeshException>(() => ContentId.Parse("b3:" + new string('x', 100_000)));
        Assert.True(e.Message.Length < 200);
    }

    [Fact]
    public void From_hash_requires_32_bytes() =>
        Assert.Throws<ArgumentException>(() => ContentId.FromHash(new byte[31]));
}
