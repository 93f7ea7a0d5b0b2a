namespace SecureMesh.Core.Tests;

/// <summary>Issue 14, finding 11: peer text is cleaned and cut before it is stored or logged.</summary>
public sealed class UntrustedTextTests
{
    [Theory]
    [InlineData("plain text", "plain text")]
    [InlineData("\u001b[31mred\u0007", "?[31mred?")]
    [InlineData("line\r\nFAKE", "line??FAKE")]
    [InlineData("a\u202Eb\u2066c\u200Bd\uFEFFe", "a?b?c?d?e")]
    [InlineData("x\u0085y\u009Bz\u007F", "x?y?z?")]
    [InlineData("sep\u2028par\u2029", "sep?par?")]
    [InlineData("tag\U000E0041s", "tag?s")]
    [InlineData("émoji 😀 ok", "émoji 😀 ok")]
    public void Unsafe_characters_become_a_question_mark(string raw, string expected) => Assert.Equal(expected, UntrustedText.Clean(raw));

    [Fact]
    public void Lone_surrogates_never_pass_and_long_text_is_cut_with_a_mark()
    {
        Assert.Equal("a?b?", UntrustedText.Clean("a\uD800b\uDC00"));
        var cut = UntrustedText.Clean(new string('x', 1000), 50);
        Assert.Equal(new string('x', 50) + "…", cut);
        // A pair is never split by the cut.
        Assert.Equal(new string('x', 49) + "…", UntrustedText.Clean(new string('x', 49) + "😀", 50));
        Assert.Equal(string.Empty, UntrustedText.Clean(null));
    }
}
