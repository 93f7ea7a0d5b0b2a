using Terminal.Gui.Input;
using Terminal.Gui.ViewBase;
using Terminal.Gui.Views;

namespace SecureMesh.Cli.Tui;

/// <summary>Searches trusted peers' catalogs and starts downloads.</summary>
internal sealed class SearchPage : TuiPage
{
    private readonly RecordTable<SearchResultView> _table = new(new()
    {
        ["Name"] = r => r.Name,
        ["Size"] = r => Fmt.Size(r.Size),
        ["Peers"] = r => r.Peers.Count,
        ["Content ID"] = r => r.ContentId,
    });

    private readonly Label _summary;

    public SearchPage(TuiApp tui)
        : base(tui, "Search", "type terms (digits too), Enter searches  Tab to results  f/Enter fetch")
    {
        TabTitle = "Find";
        Add(new Label { X = 0, Y = 0, Text = "Find:" });
        Query = new TextField { X = 6, Y = 0, Width = Dim.Fill(), Title = "words to look for" };
        Query.Accepting += (_, e) =>
        {
            e.Handled = true;
            RunSearch();
        };
        _summary = new Label { X = 0, Y = 1, Width = Dim.Fill(), Text = "No search yet." };
        _table.MaxWidth(0, 36);
        _table.View.Y = 2;
        _table.View.Height = Dim.Fill();
        Add(Query, _summary, _table.View);
    }

    public TextField Query { get; }

    public IReadOnlyList<SearchResultView> Rows => _table.Rows;

    // Results come from a search the user started, not from polling.
    public override Task<Action> LoadAsync(INodeClient client, CancellationToken cancellationToken) => Task.FromResult<Action>(() => { });

    public override void FocusDefault() => Query.SetFocus();

    public override TextField? InputField => Query;

    public override bool HandleKey(Key key, bool typing)
    {
        if (typing || !_table.View.HasFocus)
        {
            return false;
        }
        if (key == Key.F || key == Key.Enter)
        {
            Fetch();
            return true;
        }
        return false;
    }

    public void RunSearch()
    {
        var terms = Query.Text.Trim();
        if (terms.Length == 0)
        {
            Tui.ShowMessage("Search", "Type what to look for first.");
            return;
        }
        _summary.Text = $"Searching for \"{TerminalText.Safe(terms)}\"…";
        Tui.RunQuery("Search", async ct =>
        {
            var found = await Tui.Client.SearchAsync(terms, ct).ConfigureAwait(false);
            // Nothing found from nobody is not the same as nothing found: ask how many peers were there to ask.
            var connected = found.Count > 0 ? -1 : (await Tui.Client.GetStatusAsync(ct).ConfigureAwait(false)).Connections;
            return (found, connected);
        }, answer =>
        {
            var (results, connected) = answer;
            _summary.Text = results.Count > 0 ? $"{results.Count} result(s) for \"{TerminalText.Safe(terms)}\"."
                : connected == 0 ? $"No trusted peer is connected, so nobody was asked for \"{TerminalText.Safe(terms)}\" (F1 Peers: add or trust one)."
                : $"Nothing found for \"{TerminalText.Safe(terms)}\".";
            _table.SetRows(results);
            if (results.Count > 0)
            {
                _table.View.SetFocus();
            }
        });
    }

    private void Fetch()
    {
        if (_table.Selected is not { } result)
        {
            Tui.ShowMessage("Fetch", "Select a result first.");
            return;
        }
        Tui.RunAction("Fetch", ct => Tui.Client.FetchAsync(result.ContentId, ct),
            () => _summary.Text = $"Fetching {TerminalText.Safe(result.Name)}: see Transfers (F4).");
    }
}
