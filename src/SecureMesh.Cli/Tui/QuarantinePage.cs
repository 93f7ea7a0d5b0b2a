using System.Globalization;
using Terminal.Gui.Input;

namespace SecureMesh.Cli.Tui;

/// <summary>Items held in quarantine with the reason; inspect, release to a folder, delete.</summary>
internal sealed class QuarantinePage : TuiPage
{
    private readonly RecordTable<QuarantineItemView> _table = new(new()
    {
        ["Name"] = q => q.Name,
        ["Size"] = q => Fmt.Size(q.Size),
        ["State"] = q => q.State,
        ["Reason"] = q => q.Reason ?? "-",
    });

    public QuarantinePage(TuiApp tui)
        : base(tui, "Quarantine", "i/Enter inspect  r release  d delete")
    {
        _table.MaxWidth(0, 30);
        Add(_table.View);
    }

    public IReadOnlyList<QuarantineItemView> Rows => _table.Rows;

    public override async Task<Action> LoadAsync(INodeClient client, CancellationToken cancellationToken)
    {
        var items = await client.ListQuarantineAsync(cancellationToken).ConfigureAwait(false);
        return () => _table.SetRows(items);
    }

    public override void FocusDefault() => _table.View.SetFocus();

    public override bool HandleKey(Key key, bool typing)
    {
        if (typing)
        {
            return false;
        }
        Action<QuarantineItemView>? action =
            key == Key.I || key == Key.Enter ? Inspect
            : key == Key.R ? Release
            : key == Key.D || key == Key.Delete ? Delete
            : null;
        if (action is null)
        {
            return false;
        }
        if (_table.Selected is { } item)
        {
            action(item);
        }
        else
        {
            Tui.ShowMessage("Quarantine", "Select an item first.");
        }
        return true;
    }

    internal static string Details(QuarantineItemView item) => string.Join('\n',
        $"Name       {item.Name}",
        $"Size       {Fmt.Size(item.Size)} ({item.Size.ToString(CultureInfo.InvariantCulture)} bytes)",
        $"State      {item.State}",
        $"Reason     {item.Reason ?? "-"}",
        $"Item ID    {item.Id}",
        $"Content ID {item.ContentId}",
        $"From       {item.PublisherPeerId ?? "unknown"}",
        $"Received   {(item.Received is { } t ? Fmt.Time(t) : "-")}");

    private void Inspect(QuarantineItemView item) => Tui.ShowMessage("Quarantined item", Details(item));

    private void Release(QuarantineItemView item)
    {
        var values = Tui.PromptValid("Release", $"Release {item.Name}. Leave the folder empty for the configured download folder.",
            v => v[0].Length == 0 || Directory.Exists(Path.GetFullPath(SharesPage.ExpandHome(v[0]))) ? null : $"no such folder: {Path.GetFullPath(SharesPage.ExpandHome(v[0]))}",
            ("To folder", string.Empty));
        if (values is null)
        {
            return;
        }
        var folder = values[0].Length > 0 ? Path.GetFullPath(SharesPage.ExpandHome(values[0])) : null;
        Tui.RunAction("Release", ct => Tui.Client.ReleaseAsync(item.Id, folder, ct));
    }

    private void Delete(QuarantineItemView item)
    {
        if (Tui.Confirm("Delete", $"Delete {item.Name} from quarantine for good?", "_Delete"))
        {
            Tui.RunAction("Delete", ct => Tui.Client.DeleteAsync(item.Id, ct));
        }
    }
}
