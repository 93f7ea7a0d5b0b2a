using System.Globalization;
using System.Text;
using SecureMesh.Node.Quarantine;

namespace SecureMesh.Node.Tests.Quarantine;

public sealed class SafeFileNameTests
{
    [Theory]
    [InlineData("../../etc/passwd", "passwd")]
    [InlineData("/abs", "abs")]
    [InlineData("/etc/", "etc")]
    [InlineData("C:\\x", "x")]
    [InlineData("C:", "C_")]
    [InlineData("..\\..\\Windows\\System32\\evil.dll", "evil.dll")]
    [InlineData("a\u202Eexe.txt", "aexe.txt")]
    [InlineData("photo\u2066gpj.exe\u2069", "photogpj.exe")]
    [InlineData("zero\u200Bwidth\uFEFF.txt", "zerowidth.txt")]
    [InlineData("bell\u0007tab\tnew\nline\r\u0000nul\u007F.txt", "belltabnewlinenul.txt")]
    [InlineData("CON.txt", "_CON.txt")]
    [InlineData("con", "_con")]
    [InlineData("nul.tar.gz", "_nul.tar.gz")]
    [InlineData("COM1.log", "_COM1.log")]
    [InlineData("lpt9", "_lpt9")]
    [InlineData("CONSOLE.txt", "CONSOLE.txt")]
    [InlineData("COM10.txt", "COM10.txt")]
    [InlineData("..", "download")]
    [InlineData(".", "download")]
    [InlineData("", "download")]
    [InlineData("   ", "download")]
    [InlineData("/", "download")]
    [InlineData("\u202E", "download")]
    [InlineData(".bashrc", "bashrc")]
    [InlineData("-rf", "rf")]
    [InlineData("--help.txt", "help.txt")]
    [InlineData("name. . .", "name")]
    [InlineData("trailing   ", "trailing")]
    [InlineData("a..b.txt", "a.b.txt")]
    [InlineData("what?<is>|this*\".txt", "what__is__this__.txt")]
    [InlineData("Résumé 2026.pdf", "Résumé 2026.pdf")]
    [InlineData("日本語のファイル.txt", "日本語のファイル.txt")]
    [InlineData("Ελληνικά ñ 😀.png", "Ελληνικά ñ 😀.png")]
    [InlineData("report (final).tar.gz", "report (final).tar.gz")]
    public void Sanitize_gives_a_plain_safe_name(string announced, string expected)
    {
        Assert.Equal(expected, SafeFileName.Sanitize(announced));
        AssertSafe(SafeFileName.Sanitize(announced));
    }

    [Fact]
    public void Null_becomes_the_fallback()
    {
        Assert.Equal("download", SafeFileName.Sanitize(null));
    }

    [Fact]
    public void A_very_long_name_is_cut_to_200_bytes_keeping_the_extension()
    {
        var result = SafeFileName.Sanitize(new string('a', 5000) + ".tar.gz");
        Assert.True(Encoding.UTF8.GetByteCount(result) <= SafeFileName.MaxBytes);
        Assert.EndsWith(".gz", result, StringComparison.Ordinal);
        Assert.Equal(SafeFileName.MaxBytes, Encoding.UTF8.GetByteCount(result));
    }

    [Fact]
    public void A_long_multibyte_name_is_cut_on_a_character_boundary()
    {
        var result = SafeFileName.Sanitize(string.Concat(Enumerable.Repeat("😀日", 300)) + ".txt");
        Assert.True(Encoding.UTF8.GetByteCount(result) <= SafeFileName.MaxBytes);
        Assert.EndsWith(".txt", result, StringComparison.Ordinal);
        Assert.DoesNotContain('\uFFFD', result);
        Assert.Equal(result, Encoding.UTF8.GetString(Encoding.UTF8.GetBytes(result)));
    }

    [Fact]
    public void A_long_extension_is_not_kept_at_the_cost_of_the_name()
    {
        var result = SafeFileName.Sanitize("name." + new string('x', 400));
        Assert.True(Encoding.UTF8.GetByteCount(result) <= SafeFileName.MaxBytes);
        Assert.StartsWith("name.", result, StringComparison.Ordinal);
    }

    [Fact]
    public void Lone_surrogates_are_dropped()
    {
        Assert.Equal("ab.txt", SafeFileName.Sanitize("a\uD800b\uDC00.txt"));
    }

    [Theory]
    [InlineData("../../../../../../../../tmp/x")]
    [InlineData("....//....//etc")]
    [InlineData("..\u2215..\u2215etc")]
    [InlineData(" .. ")]
    [InlineData("-")]
    [InlineData("\u0000")]
    [InlineData("x/..")]
    [InlineData("AUX .txt")]
    public void Hostile_names_always_come_out_safe(string announced)
    {
        AssertSafe(SafeFileName.Sanitize(announced));
    }

    private static void AssertSafe(string name)
    {
        Assert.False(string.IsNullOrEmpty(name));
        Assert.DoesNotContain('/', name);
        Assert.DoesNotContain('\\', name);
        Assert.DoesNotContain("..", name, StringComparison.Ordinal);
        Assert.False(name.StartsWith('.') || name.StartsWith('-'), name);
        Assert.False(name.EndsWith('.') || name.EndsWith(' '), name);
        Assert.False(Path.IsPathRooted(name), name);
        Assert.False(SafeFileName.IsDeviceName(name), name);
        Assert.True(Encoding.UTF8.GetByteCount(name) <= SafeFileName.MaxBytes);
        foreach (var rune in name.EnumerateRunes())
        {
            var category = Rune.GetUnicodeCategory(rune);
            Assert.NotEqual(UnicodeCategory.Control, category);
            Assert.NotEqual(UnicodeCategory.Format, category);
        }
    }
}
