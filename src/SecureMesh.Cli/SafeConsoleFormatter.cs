using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

namespace SecureMesh.Cli;

/// <summary>
/// The simple console formatter's one-line layout (<c>HH:mm:ss info: Category[id] message</c>), with the message and
/// any exception made safe for the terminal: log lines quote peers (their error texts, announced names), and the
/// built-in formatters write those raw, escape sequences included.
/// </summary>
internal sealed class SafeConsoleFormatter : ConsoleFormatter
{
    public const string FormatterName = "securemesh";

    private readonly IOptionsMonitor<ConsoleFormatterOptions> _options;

    public SafeConsoleFormatter(IOptionsMonitor<ConsoleFormatterOptions> options)
        : base(FormatterName) => _options = options;

    /// <summary>
    /// Logs to the console through this formatter, with the timestamp format the commands use. Registered by hand rather
    /// than with <c>AddConsoleFormatter</c>, whose binding of the options to configuration is reflection (not trim- or
    /// AOT-safe) and binds nothing here: the commands' logger factories have no configuration.
    /// </summary>
    public static ILoggingBuilder AddTo(ILoggingBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.AddConsole(o => o.FormatterName = FormatterName);
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<ConsoleFormatter, SafeConsoleFormatter>());
        builder.Services.Configure<ConsoleFormatterOptions>(o => o.TimestampFormat = "HH:mm:ss ");
        return builder;
    }

    public override void Write<TState>(in LogEntry<TState> logEntry, IExternalScopeProvider? scopeProvider, TextWriter textWriter)
    {
        var message = logEntry.Formatter(logEntry.State, logEntry.Exception);
        if (string.IsNullOrEmpty(message) && logEntry.Exception is null)
        {
            return;
        }
        var options = _options.CurrentValue;
        if (options.TimestampFormat is { } format)
        {
            var now = options.UseUtcTimestamp ? DateTimeOffset.UtcNow : DateTimeOffset.Now;
            textWriter.Write(now.ToString(format, CultureInfo.InvariantCulture));
        }
        textWriter.Write(Level(logEntry.LogLevel));
        textWriter.Write(": ");
        textWriter.Write(OneLine(logEntry.Category));
        textWriter.Write('[');
        textWriter.Write(logEntry.EventId.Id.ToString(CultureInfo.InvariantCulture));
        textWriter.Write("] ");
        textWriter.Write(OneLine(message));
        if (logEntry.Exception is { } exception)
        {
            textWriter.Write(' ');
            textWriter.Write(OneLine(exception.ToString()));
        }
        textWriter.WriteLine();
    }

    private static string OneLine(string? text) => TerminalText.Safe((text ?? string.Empty).ReplaceLineEndings(" "));

    private static string Level(LogLevel level) => level switch
    {
        LogLevel.Trace => "trce",
        LogLevel.Debug => "dbug",
        LogLevel.Information => "info",
        LogLevel.Warning => "warn",
        LogLevel.Error => "fail",
        LogLevel.Critical => "crit",
        _ => "none",
    };
}
