using System.Text;

namespace SecureMesh.Cli;

/// <summary>The terminal as the commands see it; tests give their own writers, reader and environment.</summary>
internal sealed class CliConsole
{
    public CliConsole(TextWriter output, TextWriter error, TextReader input, Func<string, string?> environment, bool interactive)
    {
        // Whatever a command prints, no escape sequence or bidi control from a peer's text reaches the terminal.
        Out = TerminalText.Guard(output);
        Err = TerminalText.Guard(error);
        In = input;
        Environment = environment;
        Interactive = interactive;
    }

    public TextWriter Out { get; }

    public TextWriter Err { get; }

    public TextReader In { get; }

    public Func<string, string?> Environment { get; }

    /// <summary>True when a person sits at the terminal, so it is fine to prompt.</summary>
    public bool Interactive { get; }

    public static CliConsole System() => new(
        Console.Out,
        Console.Error,
        Console.In,
        global::System.Environment.GetEnvironmentVariable,
        !Console.IsInputRedirected && !Console.IsErrorRedirected);

    /// <summary>Reads a line from the terminal without echoing it.</summary>
    public string ReadSecret(string prompt)
    {
        Err.Write(prompt);
        Err.Flush();
        var sb = new StringBuilder();
        while (true)
        {
            var key = Console.ReadKey(intercept: true);
            if (key.Key == ConsoleKey.Enter)
            {
                break;
            }
            if (key.Key == ConsoleKey.Backspace)
            {
                if (sb.Length > 0)
                {
                    sb.Length--;
                }
                continue;
            }
            if (!char.IsControl(key.KeyChar))
            {
                sb.Append(key.KeyChar);
            }
        }
        Err.WriteLine();
        return sb.ToString();
    }
}
