      * Account master: mostly packed decimal, for the benchmark.
       01  ACCOUNT-RECORD.
           05  ACCT-NO             PIC 9(9)       COMP-3.
           05  ACCT-TYPE           PIC X(3).
           05  ACCT-STATUS         PIC X.
           05  ACCT-BALANCE        PIC S9(11)V99  COMP-3.
           05  ACCT-AVAILABLE      PIC S9(11)V99  COMP-3.
           05  ACCT-RATE           PIC S9(3)V9(5) COMP-3.
           05  ACCT-OPENED         PIC 9(8)       COMP-3.
           05  ACCT-BRANCH         PIC S9(4)      COMP.
           05  ACCT-MONTHLY        PIC S9(9)V99   COMP-3 OCCURS 6 TIMES.
           05  ACCT-OWNER          PIC X(30).
           05  ACCT-TXN-COUNT      PIC S9(7)      COMP-3.
           05  FILLER              PIC X(12).
