using System.Buffers;
using System.CommandLine;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using SecureMesh.Cli.Json;
using SecureMesh.Core;

namespace SecureMesh.Cli;

/// <summary>What every command gets: the console, the data directory and the global switches.</summary>
internal sealed class CliContext
{
    /// <summary>How <see cref="CliJsonContext.Output"/> lays out its output, for JSON written by hand.</summary>
    private static readonly JsonWriterOptions WriterOptions = new()
    {
        Indented = CliJsonContext.Output.Options.WriteIndented,
        Encoder = CliJsonContext.Output.Options.Encoder,
    };

    public CliContext(CliConsole console, string home, bool json, bool verbose)
    {
        Console = console;
        Home = home;
        Json = json;
        Verbose = verbose;
    }

    public CliConsole Console { get; }

    public string Home { get; }

    public bool Json { get; }

    public bool Verbose { get; }

    public TextWriter Out => Console.Out;

    public TextWriter Err => Console.Err;

    /// <summary>The data directory: --home, else $SECUREMESH_HOME, else the per-user data folder.</summary>
    public static string ResolveHome(string? option, Func<string, string?> environment)
    {
        if (!string.IsNullOrWhiteSpace(option))
        {
            return Path.GetFullPath(option);
        }
        var fromEnv = environment("SECUREMESH_HOME");
        if (!string.IsNullOrWhiteSpace(fromEnv))
        {
            return Path.GetFullPath(fromEnv);
        }
        var data = Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.DoNotVerify);
        if (string.IsNullOrEmpty(data))
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, "no data directory: give --home DIR or set SECUREMESH_HOME");
        }
        return Path.Combine(data, "securemesh");
    }

    /// <summary>
    /// Writes <paramref name="value"/> as JSON with its build-time metadata (a property of <see cref="CliJsonContext.Output"/>),
    /// escaped for the terminal.
    /// </summary>
    public void WriteJson<T>(T value, JsonTypeInfo<T> typeInfo) => Out.WriteLine(TerminalText.EscapeJson(JsonSerializer.Serialize(value, typeInfo)));

    /// <summary>
    /// Writes JSON that <paramref name="write"/> builds, laid out and escaped as <see cref="WriteJson{T}"/> does. For
    /// the output of one-off commands: the serializer's first use costs tens of ms of JIT at the end of a command.
    /// </summary>
    public void WriteJson(Action<Utf8JsonWriter> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            write(writer);
        }
        Out.WriteLine(TerminalText.EscapeJson(Encoding.UTF8.GetString(buffer.WrittenSpan)));
    }

    /// <summary>
    /// Gets the passphrase from stdin (when asked), $SECUREMESH_PASSPHRASE, or the terminal; null when none is available.
    /// </summary>
    public string? ReadPassphrase(bool fromStdin, bool confirm)
    {
        if (fromStdin)
        {
            var line = Console.In.ReadLine()
                ?? throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, "--passphrase-stdin: nothing on standard input");
            return line.TrimEnd('\r');
        }
        var env = Console.Environment("SECUREMESH_PASSPHRASE");
        if (!string.IsNullOrEmpty(env))
        {
            return env;
        }
        if (!Console.Interactive)
        {
            return null;
        }
        var first = Console.ReadSecret(confirm ? "Passphrase for the new identity (empty for none): " : "Passphrase: ");
        if (confirm && first.Length > 0)
        {
            var second = Console.ReadSecret("Repeat the passphrase: ");
            if (!string.Equals(first, second, StringComparison.Ordinal))
            {
                throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, "the passphrases do not match");
            }
        }
        return first;
    }

    /// <summary>A passphrase callback for unlocking the identity, failing clearly when none can be had.</summary>
    public Func<string?> PassphraseSource(bool fromStdin) => () =>
        ReadPassphrase(fromStdin, confirm: false)
        ?? throw new SecureMeshException(SecureMeshErrorKind.WrongPassphrase,
            "the identity is passphrase-protected: type it on a terminal, pipe it with --passphrase-stdin, or set SECUREMESH_PASSPHRASE");
}

/// <summary><c>get --json</c>: the download's outcome.</summary>
internal sealed record GetOutput(string ContentId, string? Name, long Size, string State, string? Path, string? Reason,
    long? QuarantineId, long ChunkRequests, long ResumedChunks, double BytesPerSecond)
{
    /// <summary>The same object <see cref="CliContext.WriteJson{T}"/> would write with the CLI's options, written by hand (see <see cref="CliContext.WriteJson(Action{Utf8JsonWriter})"/>).</summary>
    public void WriteTo(Utf8JsonWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteStartObject();
        writer.WriteString("contentId", ContentId);
        writer.WriteString("name", Name);
        writer.WriteNumber("size", Size);
        writer.WriteString("state", State);
        writer.WriteString("path", Path);
        writer.WriteString("reason", Reason);
        if (QuarantineId is { } quarantineId)
        {
            writer.WriteNumber("quarantineId", quarantineId);
        }
        else
        {
            writer.WriteNull("quarantineId");
        }
        writer.WriteNumber("chunkRequests", ChunkRequests);
        writer.WriteNumber("resumedChunks", ResumedChunks);
        writer.WriteNumber("bytesPerSecond", BytesPerSecond);
        writer.WriteEndObject();
    }
}
