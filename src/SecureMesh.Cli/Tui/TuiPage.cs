using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using SecureMesh.Core.Identity;
using Terminal.Gui.Input;
using Terminal.Gui.ViewBase;
using Terminal.Gui.Views;

namespace SecureMesh.Cli.Tui;

/// <summary>One view of the UI: loads its data off the UI thread and applies it on the UI thread.</summary>
internal abstract class TuiPage : View
{
    protected TuiPage(TuiApp tui, string title, string helpText)
    {
        Tui = tui;
        Title = title;
        HelpText = helpText;
        Width = Dim.Fill();
        Height = Dim.Fill();
        CanFocus = true;
    }

    protected TuiApp Tui { get; }

    /// <summary>The view's name on an inactive tab when the full names do not fit the screen's width.</summary>
    public string TabTitle { get; protected init; } = string.Empty;

    /// <summary>The keys of this view, shown above the status line.</summary>
    public string HelpText { get; }

    /// <summary>Called off the UI thread: reads from the client and returns what to do with the answer on the UI thread.</summary>
    public abstract Task<Action> LoadAsync(INodeClient client, CancellationToken cancellationToken);

    /// <summary>A key not taken by the shell; <paramref name="typing"/> is true when a text field has the focus.</summary>
    public abstract bool HandleKey(Key key, bool typing);

    /// <summary>Gives the focus to the view's main control.</summary>
    public abstract void FocusDefault();

    /// <summary>The view's text field, if it has one: bare digits are typed into it instead of switching views.</summary>
    public virtual TextField? InputField => null;
}

/// <summary>A table bound to a list of records that keeps the selected row across refreshes.</summary>
internal sealed class RecordTable<T>
    where T : class
{
    private readonly Dictionary<string, Func<T, object>> _columns;

    public RecordTable(Dictionary<string, Func<T, object>> columns)
    {
        // Names, reasons and log details come from peers and files: every text cell is made safe for the terminal here,
        // so no view can forget it (Terminal.Gui shows C0 controls as symbols, but passes bidi and zero-width characters).
        _columns = columns.ToDictionary(c => c.Key, c => Cell(c.Value));
        View = new TableView
        {
            Width = Dim.Fill(),
            Height = Dim.Fill(),
            FullRowSelect = true,
            Table = new EnumerableTableSource<T>([], columns),
        };
        View.Style.ShowHorizontalBottomLine = false;
        View.Style.ExpandLastColumn = true;
    }

    public TableView View { get; }

    public IReadOnlyList<T> Rows { get; private set; } = [];

    public T? Selected
    {
        get
        {
            var row = View.Value?.SelectedCell.Y ?? -1;
            return row >= 0 && row < Rows.Count ? Rows[row] : null;
        }
    }

    public void SetRows(IReadOnlyList<T> rows)
    {
        var row = View.Value?.SelectedCell.Y ?? 0;
        Rows = rows;
        View.Table = new EnumerableTableSource<T>(rows, _columns);
        if (rows.Count > 0)
        {
            View.SetSelection(0, Math.Clamp(row, 0, rows.Count - 1), false);
        }
        View.Update();
    }

    public void MaxWidth(int column, int width) => View.Style.GetOrCreateColumnStyle(column).MaxWidth = width;

    private static Func<T, object> Cell(Func<T, object> column) => row =>
    {
        var value = column(row);
        return value is string text ? TerminalText.Safe(text) : value;
    };
}

/// <summary>How numbers look in the UI.</summary>
internal static class Fmt
{
    public static string Size(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double value = bytes;
        var unit = 0;
        while (value >= 1024 && unit < units.Length - 1)
        {
            value /= 1024;
            unit++;
        }
        return unit == 0
            ? string.Create(CultureInfo.InvariantCulture, $"{bytes} B")
            : string.Create(CultureInfo.InvariantCulture, $"{value:0.0} {units[unit]}");
    }

    public static string Rate(double bytesPerSecond) => bytesPerSecond <= 0 ? "-" : Size((long)bytesPerSecond) + "/s";

    public static string Duration(TimeSpan? span)
    {
        if (span is not { } t || t < TimeSpan.Zero)
        {
            return "-";
        }
        if (t.TotalHours >= 1)
        {
            return string.Create(CultureInfo.InvariantCulture, $"{(int)t.TotalHours}h{t.Minutes:00}m");
        }
        return t.TotalMinutes >= 1
            ? string.Create(CultureInfo.InvariantCulture, $"{t.Minutes}m{t.Seconds:00}s")
            : string.Create(CultureInfo.InvariantCulture, $"{t.Seconds}s");
    }

    /// <summary>A text progress bar, e.g. <c>[#####-----]  50%</c>.</summary>
    public static string Bar(double fraction, int width = 10)
    {
        fraction = Math.Clamp(fraction, 0, 1);
        var filled = (int)Math.Round(fraction * width);
        return string.Create(CultureInfo.InvariantCulture, $"[{new string('#', filled)}{new string('-', width - filled)}] {fraction * 100,3:0}%");
    }

    /// <summary>Enough of a Peer ID to tell peers apart in a table; dialogs show it whole.</summary>
    public static string ShortId(string? peerId) =>
        peerId is null ? "-" : peerId.Length <= 16 ? peerId : $"{peerId[..10]}…{peerId[^4..]}";

    public static string Time(DateTimeOffset time) => time.ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);

    public static string State(PeerViewState state) => state.ToString().ToLowerInvariant();

    public static string State(TransferViewState state) => state.ToString().ToLowerInvariant();
}

/// <summary>Peers typed into a dialog: names or Peer IDs, separated by commas.</summary>
internal static class PeerNames
{
    /// <summary>Peer IDs as they are; a name must match exactly one peer of <paramref name="pool"/> (case-insensitive).</summary>
    public static bool TryResolve(string text, IEnumerable<(string PeerId, string? Name)> pool, out List<string> ids, [NotNullWhen(false)] out string? error)
    {
        ids = [];
        error = null;
        var known = pool.ToList();
        foreach (var item in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (PeerId.TryParse(item, out var id))
            {
                ids.Add(id.Text);
                continue;
            }
            var named = known.Where(p => string.Equals(p.Name, item, StringComparison.OrdinalIgnoreCase)).ToList();
            if (named.Count != 1)
            {
                error = named.Count == 0 ? $"no peer named '{item}'" : $"several peers are named '{item}': give the Peer ID";
                return false;
            }
            ids.Add(named[0].PeerId);
        }
        return true;
    }
}
