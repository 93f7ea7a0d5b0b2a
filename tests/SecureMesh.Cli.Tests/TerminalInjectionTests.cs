using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;
using SecureMesh.Cli.Json;
using SecureMesh.Core;

namespace SecureMesh.Cli.Tests;

/// <summary>
/// A peer picks file names, search results and error texts; none of what it picks may steer the user's terminal. These
/// are the strings a hostile peer would send.
/// </summary>
public sealed class TerminalInjectionTests
{
    public static TheoryData<string> Hostile => new()
    {
        "a\u001b[2J\u001b[Hcleared",               // CSI: clear the screen, cursor home
        "b\u001b]0;PWNED\u0007title",              // OSC 0: window title, BEL-terminated
        "c\u001b]52;c;Y3VybCBldmlsfHNo\u001b\\clip", // OSC 52: write the clipboard, ST-terminated
        "d\u009b31mred",                           // C1 CSI (one byte)
        "e\u009d0;PWNED\u009ctitle",               // C1 OSC ... C1 ST
        "f\u0085next\u008dline",                   // C1 NEL, RI
        "g\rover\u0008\u0008\u007fwrite",          // CR, backspace, DEL
        "h\nsecond line\ttab",                     // line feed, tab
        "i\u202Eexe.txt",                          // right-to-left override: shows "txt.exe"
        "j\u2066\u2067\u2068\u2069isolates",       // bidi isolates
        "k\u200B\u200C\u200D\u2060\uFEFFzero-width",
        "l\u00ADsoft\u061Chyphen",
        "m\u2028line\u2029paragraph",
        "n\U000E0041\U000E0042tags",               // invisible tag characters (format, beyond the BMP)
        "o\U0001D173beam\U0001D17Aend",             // musical formatting characters (format, beyond the BMP)
    };

    /// <summary>Independent of the code under test: what must never reach a terminal.</summary>
    internal static bool Dangerous(char c) =>
        c < 0x20 || (c >= 0x7F && c <= 0x9F) || c is '\u2028' or '\u2029' || char.GetUnicodeCategory(c) == UnicodeCategory.Format;

    /// <summary>The same for the UTF-16 unit at <paramref name="i"/>: a surrogate is judged by the character its pair encodes.</summary>
    internal static bool Dangerous(string s, int i)
    {
        if (!char.IsSurrogate(s[i]))
        {
            return Dangerous(s[i]);
        }
        var start = char.IsLowSurrogate(s[i]) && i > 0 ? i - 1 : i;
        return !Rune.TryGetRuneAt(s, start, out var rune) || Rune.GetUnicodeCategory(rune) == UnicodeCategory.Format;
    }

    internal static void AssertInert(string output, bool allowLineBreaks)
    {
        for (var i = 0; i < output.Length; i++)
        {
            var c = output[i];
            if (allowLineBreaks && c is '\n' or '\r' or '\t')
            {
                continue;
            }
            Assert.False(Dangerous(output, i), $"U+{(int)c:X4} at {i} reaches the terminal in: {output.Replace("\u001b", "<ESC>", StringComparison.Ordinal)}");
        }
    }

    [Theory]
    [MemberData(nameof(Hostile))]
    public void Display_text_from_a_peer_loses_every_control_escape_and_bidi_character_and_keeps_the_rest(string hostile)
    {
        var safe = TerminalText.Safe(hostile);
        AssertInert(safe, allowLineBreaks: false);
        Assert.Equal(hostile.Length, safe.Length);
        for (var i = 0; i < hostile.Length; i++)
        {
            Assert.Equal(Dangerous(hostile, i) ? TerminalText.Replacement : hostile[i], safe[i]);
        }
        var lines = TerminalText.SafeLines(hostile);
        AssertInert(lines.Replace("\n", string.Empty, StringComparison.Ordinal), allowLineBreaks: false);
        Assert.Equal(hostile.Count(c => c == '\n'), lines.Count(c => c == '\n'));
    }

    [Fact]
    public void Printable_text_in_any_script_passes_unchanged()
    {
        const string text = "naïve café Ωμέγα 日本語 עברית العربية 😀 <>&'\"\\ ~`{}[]";
        Assert.Same(text, TerminalText.Safe(text));
        Assert.Equal(text, TerminalText.SafeLines(text));
        Assert.Equal(string.Empty, TerminalText.Safe(null));
    }

    [Theory]
    [MemberData(nameof(Hostile))]
    public async Task Whatever_a_command_writes_to_its_console_no_escape_or_bidi_character_gets_through(string hostile)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var console = new CliConsole(output, error, new StringReader(string.Empty), _ => null, interactive: false);
        console.Out.Write(hostile);
        console.Out.WriteLine(hostile);
        console.Out.Write(hostile[0]);
        console.Out.Write(hostile[1]);
        console.Out.Write(hostile.ToCharArray(), 0, hostile.Length);
        console.Out.Write(hostile.AsSpan());
        console.Out.WriteLine(hostile.AsSpan());
        await console.Out.WriteAsync(hostile);
        await console.Out.WriteLineAsync(hostile.AsMemory());
        console.Out.WriteLine(new object[] { hostile }[0]);
        console.Err.WriteLine($"error: {hostile}");
        console.Err.Write("\rprogress 50%");
        AssertInert(output.ToString(), allowLineBreaks: true);
        AssertInert(error.ToString(), allowLineBreaks: true);
        Assert.Contains("progress 50%", error.ToString(), StringComparison.Ordinal);
        Assert.Contains('\r', error.ToString());
    }

    [Theory]
    [MemberData(nameof(Hostile))]
    public void Json_output_escapes_bidi_and_control_characters_and_keeps_the_exact_value(string hostile)
    {
        var output = new StringWriter();
        var console = new CliConsole(output, new StringWriter(), new StringReader(string.Empty), _ => null, interactive: false);
        var context = new CliContext(console, "/nonexistent", json: true, verbose: false);
        context.WriteJson([new TransferJson("b3:x", "b3:x", hostile, "failed", 0, 0, 0, 0, true, hostile, null, null)], CliJsonContext.Output.Transfers);
        AssertInert(output.ToString(), allowLineBreaks: true);
        using var doc = JsonDocument.Parse(output.ToString());
        Assert.Equal(hostile, doc.RootElement[0].GetProperty("name").GetString());
        Assert.Equal(hostile, doc.RootElement[0].GetProperty("reason").GetString());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void An_error_quoting_a_peer_is_one_inert_line_and_the_verbose_trace_is_inert_too(bool verbose)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var console = new CliConsole(output, error, new StringReader(string.Empty), _ => null, interactive: false);
        var peerText = "download failed: \u001b]0;PWNED\u0007 \u009b2J \u202Eexe.txt\nfake: released to /home/you";
        var code = CliApp.Report(console, new SecureMeshException(SecureMeshErrorKind.Protocol, peerText), verbose);
        Assert.Equal(CliApp.Failure, code);
        var lines = error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("error: download failed: ", lines[0], StringComparison.Ordinal);
        Assert.Contains("fake: released to /home/you", lines[0], StringComparison.Ordinal);
        AssertInert(lines[0], allowLineBreaks: false);
        AssertInert(error.ToString(), allowLineBreaks: true);
        if (verbose)
        {
            Assert.True(lines.Length > 1);
        }
        else
        {
            Assert.Single(lines);
        }
    }

    [Fact]
    public void Log_lines_quoting_a_peer_are_one_inert_line_each()
    {
        var formatter = new SafeConsoleFormatter(new FixedOptions<ConsoleFormatterOptions>(new() { TimestampFormat = "HH:mm:ss " }));
        var writer = new StringWriter();
        var peerText = "\u001b[1A\u001b[2Kfake line\n\u009b31m\u202Eexe.txt";
        var entry = new LogEntry<string>(LogLevel.Warning, "SecureMesh.Node.Transfer", new EventId(622), peerText, new IOException(peerText), (s, _) => $"peer dropped from download: {s}");
        formatter.Write(entry, null, writer);
        var text = writer.ToString();
        Assert.EndsWith(Environment.NewLine, text, StringComparison.Ordinal);
        var line = text[..^Environment.NewLine.Length];
        AssertInert(line, allowLineBreaks: false);
        Assert.Matches(@"^\d\d:\d\d:\d\d warn: SecureMesh\.Node\.Transfer\[622\] peer dropped from download: ", line);
        Assert.Contains("fake line", line, StringComparison.Ordinal);
    }

    [Fact]
    public void Console_logging_is_wired_to_the_inert_formatter()
    {
        var services = new ServiceCollection();
        services.AddLogging(builder => SafeConsoleFormatter.AddTo(builder));
        using var provider = services.BuildServiceProvider();
        Assert.Equal(SafeConsoleFormatter.FormatterName, provider.GetRequiredService<IOptions<ConsoleLoggerOptions>>().Value.FormatterName);
        Assert.Contains(provider.GetServices<ConsoleFormatter>(), f => f is SafeConsoleFormatter);
    }

    [Fact]
    public void The_wired_formatter_writes_the_commands_timestamp_once_per_registration()
    {
        var services = new ServiceCollection();
        services.AddLogging(builder => SafeConsoleFormatter.AddTo(SafeConsoleFormatter.AddTo(builder)));
        using var provider = services.BuildServiceProvider();
        var formatter = Assert.Single(provider.GetServices<ConsoleFormatter>().OfType<SafeConsoleFormatter>());
        var writer = new StringWriter();
        formatter.Write(new LogEntry<string>(LogLevel.Information, "SecureMesh.Node", new EventId(7), "up", null, (s, _) => s), null, writer);
        Assert.Matches(@"^\d\d:\d\d:\d\d info: SecureMesh\.Node\[7\] up\r?\n$", writer.ToString());
    }

    private sealed class FixedOptions<T>(T value) : IOptionsMonitor<T>
    {
        public T CurrentValue => value;

        public T Get(string? name) => value;

        public IDisposable? OnChange(Action<T, string?> listener) => null;
    }
}
